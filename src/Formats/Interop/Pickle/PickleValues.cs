namespace Checkpointing.Formats.Interop.Pickle;

/// <summary>An object of a format (a numpy array, ...) that stands for a checkpoint value once unpickling ends.</summary>
internal interface IPickleValue
{
    object ToValue();
}

/// <summary>
/// Turns unpickled Python values into the checkpoint value model (see <see cref="StateTree"/>):
/// dicts with only string keys → <see cref="OrderedDictionary{TKey,TValue}"/> of string (OrderedDict →
/// <see cref="PythonOrderedDict"/>), other dicts → OrderedDictionary of object (ints as long),
/// lists, tuples and sets → <see cref="List{T}"/>, bytes → byte[]. Shared objects stay shared.
/// </summary>
internal sealed class PickleValues
{
    private const int MaxDepth = 1000;
    private readonly Dictionary<object, object> _converted = new(ReferenceEqualityComparer.Instance);

    public static object? ToStateValue(object? raw, string source)
    {
        try
        {
            return new PickleValues().Convert(raw, 0);
        }
        catch (PickleDataException e)
        {
            throw new CheckpointFormatException(source, e.Check, e.Message, e);
        }
    }

    private object? Convert(object? raw, int depth)
    {
        if (depth > MaxDepth) throw new PickleDataException($"values are nested more than {MaxDepth} levels deep");
        switch (raw)
        {
            case null or bool or long or double or string or byte[] or HostTensor: return raw;
            case IPickleValue value: return value.ToValue();
            case PyGlobal global: throw new PickleDataException($"global '{global.Name}' is used as a value, which a checkpoint cannot hold");
        }
        if (_converted.TryGetValue(raw, out var done)) return done;
        switch (raw)
        {
            case object?[] tuple: return FillList(raw, tuple, depth);
            case List<object?> list: return FillList(raw, list, depth);
            case PySet set: return FillList(raw, set.Items, depth);
            case PyDict dict when dict.Items.Keys.All(k => k is string):
                var named = dict.IsOrderedDict ? new PythonOrderedDict() : new OrderedDictionary<string, object?>(StringComparer.Ordinal);
                _converted[raw] = named;
                foreach (var (key, value) in dict.Items) named.Add((string)key, Convert(value, depth + 1));
                return named;
            case PyDict dict:
                var keyed = new OrderedDictionary<object, object?>(dict.Items.Count);
                _converted[raw] = keyed;
                foreach (var (key, value) in dict.Items) keyed.Add(Convert(key, depth + 1)!, Convert(value, depth + 1));
                return keyed;
            default: throw new PickleDataException($"a {raw.GetType().Name} cannot be a checkpoint value");
        }
    }

    private List<object?> FillList(object raw, IReadOnlyList<object?> items, int depth)
    {
        var list = new List<object?>(items.Count);
        _converted[raw] = list;
        foreach (var item in items) list.Add(Convert(item, depth + 1));
        return list;
    }
}
