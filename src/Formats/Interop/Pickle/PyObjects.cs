using System.Diagnostics.CodeAnalysis;

namespace Checkpointing.Formats.Interop.Pickle;

/// <summary>
/// A global (class or function) that a pickle named and the allow-list granted. Calling it is the
/// only way a pickle can make anything happen, and every callable is our own C# code.
/// </summary>
internal sealed class PyGlobal(string name, Func<object?[], object?> call)
{
    public string Name { get; } = name;

    public object? Call(object?[] args) => call(args);

    public override string ToString() => Name;
}

/// <summary>An object that the BUILD opcode completes after construction (Python's <c>__setstate__</c>).</summary>
internal interface IPickleBuildable
{
    void SetState(object? state);
}

/// <summary>
/// A Python dict during unpickling: insertion-ordered like Python's, with Python's key equality
/// (1 == 1.0 == True). <see cref="IsOrderedDict"/> remembers <c>collections.OrderedDict</c>.
/// </summary>
internal sealed class PyDict(bool isOrderedDict) : IPickleBuildable
{
    public OrderedDictionary<object, object?> Items { get; } = new(PyKeyComparer.Instance);
    public bool IsOrderedDict { get; } = isOrderedDict;

    public void Set(object? key, object? value)
    {
        if (!PyKeyComparer.IsHashable(key)) throw new PickleDataException($"dict key of type {PyTypeName(key)} is not supported");
        Items[key] = value;
    }

    /// <summary>An OrderedDict's BUILD carries instance attributes (torch's <c>_metadata</c>); they are dropped.</summary>
    public void SetState(object? state)
    {
        if (!IsOrderedDict || state is not PyDict) throw new PickleDataException("BUILD on a dict is only supported for OrderedDict attributes");
    }

    public static string PyTypeName(object? value) => value?.GetType().Name ?? "None";
}

/// <summary>A Python set or frozenset; checkpoints get it back as a list.</summary>
internal sealed class PySet
{
    public List<object?> Items { get; } = [];
}

/// <summary>Malformed pickle content; the machine adds the file name when it reports it.</summary>
internal sealed class PickleDataException(string detail, string check = "pickle") : Exception(detail)
{
    public string Check { get; } = check;
}

/// <summary>Python's equality for the key types a checkpoint may use: str, int, float, bool, bytes and tuples of those.</summary>
internal sealed class PyKeyComparer : IEqualityComparer<object>
{
    public static readonly PyKeyComparer Instance = new();

    public static bool IsHashable([NotNullWhen(true)] object? key) => key switch
    {
        string or long or double or bool or byte[] => true,
        object?[] tuple => tuple.All(IsHashable),
        _ => false,
    };

    public new bool Equals(object? x, object? y)
    {
        if (TryNumber(x, out var a) && TryNumber(y, out var b)) return a == b;
        return (x, y) switch
        {
            (string s, string t) => string.Equals(s, t, StringComparison.Ordinal),
            (byte[] s, byte[] t) => s.AsSpan().SequenceEqual(t),
            (object?[] s, object?[] t) => s.Length == t.Length && s.Zip(t).All(p => Equals(p.First, p.Second)),
            _ => false,
        };
    }

    public int GetHashCode(object obj)
    {
        if (TryNumber(obj, out var number)) return number.GetHashCode();
        switch (obj)
        {
            case string s: return StringComparer.Ordinal.GetHashCode(s);
            case byte[] bytes:
                var hash = new HashCode();
                hash.AddBytes(bytes);
                return hash.ToHashCode();
            case object?[] tuple:
                var combined = new HashCode();
                foreach (var item in tuple) combined.Add(item is null ? 0 : GetHashCode(item));
                return combined.ToHashCode();
            default: return 0;
        }
    }

    /// <summary>Numbers compare by value across int, bool and float: an integral float becomes its integer.</summary>
    private static bool TryNumber(object? value, out (bool IsInteger, long Integer, double Real) number)
    {
        number = value switch
        {
            long l => (true, l, 0),
            bool b => (true, b ? 1 : 0, 0),
            double d when IsExactInteger(d) => (true, (long)d, 0),
            double d => (false, 0, d),
            _ => default,
        };
        return value is long or bool or double;
    }

    private static bool IsExactInteger(double d) => double.IsFinite(d) && Math.Floor(d) == d && d >= long.MinValue && d < 9.2233720368547758E18;
}
