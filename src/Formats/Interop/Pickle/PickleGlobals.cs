namespace Checkpointing.Formats.Interop.Pickle;

/// <summary>
/// The allow-list of globals a pickle may name. It is an immutable per-format table, not a
/// process-wide registry: what one reader allows never leaks into another.
/// </summary>
internal sealed class PickleGlobals
{
    private readonly Dictionary<string, PyGlobal> _allowed;

    public PickleGlobals(IEnumerable<PyGlobal> allowed) => _allowed = allowed.ToDictionary(g => g.Name, StringComparer.Ordinal);

    /// <summary>Collections and codecs that plain Python data needs.</summary>
    public static IEnumerable<PyGlobal> PythonData { get; } =
    [
        new("collections.OrderedDict", (args, meter) => FillDict(new PyDict(isOrderedDict: true, meter), args, "OrderedDict")),
        new("collections.Counter", (args, meter) => FillDict(new PyDict(isOrderedDict: false, meter), args, "Counter")),
        new("builtins.set", MakeSet),
        new("builtins.frozenset", MakeSet),
        new("_codecs.encode", Encode),
    ];

    public PyGlobal Resolve(string module, string name)
    {
        // Python 2 pickles name the Python 3 modules by their old names (what fix_imports maps).
        var qualified = $"{module switch { "__builtin__" => "builtins", "copy_reg" => "copyreg", _ => module }}.{name}";
        return _allowed.TryGetValue(qualified, out var global)
            ? global
            : throw new PickleDataException(
                $"global '{module}.{name}' is not allowed: a checkpoint may only name tensor, storage, collection and numpy reconstruction globals, and loading anything else could run code",
                "pickle global");
    }

    public PickleGlobals With(IEnumerable<PyGlobal> more) => new(_allowed.Values.Concat(more));

    /// <summary>OrderedDict() / Counter(): empty, from a mapping, or from a list of (key, value) pairs (Python 2's OrderedDict reduce).</summary>
    private static PyDict FillDict(PyDict dict, object?[] args, string what)
    {
        switch (args)
        {
            case []: break;
            case [PyDict source]:
                foreach (var (key, value) in source.Items) dict.Set(key, value);
                break;
            case [List<object?> pairs]:
                foreach (var pair in pairs)
                {
                    if (pair is not (object?[] or List<object?>) || Items(pair) is not [var key, var value]) throw new PickleDataException($"{what} item is not a (key, value) pair");
                    dict.Set(key, value);
                }
                break;
            default: throw new PickleDataException($"{what} called with unsupported arguments");
        }
        return dict;
    }

    private static PySet MakeSet(object?[] args, BudgetMeter meter)
    {
        var set = new PySet();
        switch (args)
        {
            case []: break;
            case [var items] when items is object?[] or List<object?> or PySet:
                meter.ChargeObjects(Items(items).Count);
                set.Items.AddRange(Items(items));
                break;
            default: throw new PickleDataException("set called with unsupported arguments");
        }
        return set;
    }

    /// <summary><c>_codecs.encode(text, 'latin1')</c>: how Python 3 writes bytes in protocol 2.</summary>
    private static byte[] Encode(object?[] args, BudgetMeter meter)
    {
        switch (args)
        {
            case [string text, string encoding] when encoding is "latin1" or "latin-1" or "iso-8859-1":
                if (!text.All(c => c <= '\u00ff')) throw new PickleDataException("_codecs.encode: text is not latin-1");
                meter.ChargeBytes(text.Length, "_codecs.encode");
                return System.Text.Encoding.Latin1.GetBytes(text);
            case [string, string encoding]: throw new PickleDataException($"_codecs.encode with encoding '{encoding}' is not supported");
            default: throw new PickleDataException("_codecs.encode called with unsupported arguments");
        }
    }

    private static IReadOnlyList<object?> Items(object? sequence) => sequence switch
    {
        object?[] tuple => tuple,
        List<object?> list => list,
        PySet set => set.Items,
        _ => [],
    };
}
