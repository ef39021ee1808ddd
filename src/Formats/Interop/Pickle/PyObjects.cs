namespace Checkpointing.Formats.Interop.Pickle;

/// <summary>
/// A global (class or function) that a pickle named and the allow-list granted. Calling it is the
/// only way a pickle can make anything happen, and every callable is our own C# code.
/// </summary>
internal sealed class PyGlobal(string name, Func<object?[], BudgetMeter, object?> call)
{
    public string Name { get; } = name;

    /// <summary>Runs the global; it charges whatever it copies or allocates to <paramref name="meter"/> first.</summary>
    public object? Call(object?[] args, BudgetMeter meter) => call(args, meter);

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
/// Keys are bounded (<see cref="ReadBudget.MaxKeyItems"/>) so that hashing and comparing one stays cheap.
/// </summary>
internal sealed class PyDict(bool isOrderedDict, BudgetMeter meter) : IPickleBuildable
{
    public OrderedDictionary<object, object?> Items { get; } = new(PyKeyComparer.Instance);
    public bool IsOrderedDict { get; } = isOrderedDict;

    public void Set(object? key, object? value)
    {
        var checkedKey = PyKeyComparer.CheckKey(key, meter);
        meter.ChargeObjects(1);
        Items[checkedKey] = value;
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

/// <summary>
/// Python's equality for the key types a checkpoint may use: str, int, float, bool, bytes and tuples of
/// those. Tuples are walked with an explicit stack: a key's nesting never reaches the call stack.
/// </summary>
internal sealed class PyKeyComparer : IEqualityComparer<object>
{
    public static readonly PyKeyComparer Instance = new();

    /// <summary>The key, unless it is not hashable or reaches more than <see cref="ReadBudget.MaxKeyItems"/> items.</summary>
    public static object CheckKey(object? key, BudgetMeter meter)
    {
        if (key is null) throw new PickleDataException("dict key of type None is not supported");
        if (key is not object?[]) return IsScalar(key) ? key : throw new PickleDataException($"dict key of type {PyDict.PyTypeName(key)} is not supported");
        var limit = meter.Budget.MaxKeyItems;
        var pending = new Stack<object?>();
        pending.Push(key);
        for (var visited = 0; pending.TryPop(out var item); visited++)
        {
            if (visited >= limit)
                throw meter.Exceeded($"a dict key holds more than {limit} items (limit {nameof(ReadBudget.MaxKeyItems)} = {limit})");
            if (item is object?[] tuple)
            {
                foreach (var child in tuple) pending.Push(child);
            }
            else if (!IsScalar(item)) throw new PickleDataException($"dict key of type {PyDict.PyTypeName(item)} is not supported");
        }
        return key;
    }

    private static bool IsScalar(object? item) => item is string or long or double or bool or byte[];

    public new bool Equals(object? x, object? y)
    {
        if (x is not object?[] || y is not object?[]) return ScalarEquals(x, y);
        var pending = new Stack<(object? X, object? Y)>();
        pending.Push((x, y));
        while (pending.TryPop(out var pair))
        {
            if (pair is (object?[] s, object?[] t))
            {
                if (s.Length != t.Length) return false;
                for (var i = 0; i < s.Length; i++) pending.Push((s[i], t[i]));
            }
            else if (!ScalarEquals(pair.X, pair.Y)) return false;
        }
        return true;
    }

    public int GetHashCode(object obj)
    {
        if (obj is not object?[]) return ScalarHash(obj);
        var hash = new HashCode();
        var pending = new Stack<object?>();
        pending.Push(obj);
        while (pending.TryPop(out var item))
        {
            if (item is object?[] tuple)
            {
                hash.Add(tuple.Length);
                for (var i = tuple.Length - 1; i >= 0; i--) pending.Push(tuple[i]);
            }
            else hash.Add(ScalarHash(item));
        }
        return hash.ToHashCode();
    }

    private static bool ScalarEquals(object? x, object? y)
    {
        if (TryNumber(x, out var a) && TryNumber(y, out var b)) return a == b;
        return (x, y) switch
        {
            (string s, string t) => string.Equals(s, t, StringComparison.Ordinal),
            (byte[] s, byte[] t) => s.AsSpan().SequenceEqual(t),
            _ => false,
        };
    }

    /// <summary>Seeded per process (HashCode), so a file cannot pick keys that all collide.</summary>
    private static int ScalarHash(object? item)
    {
        if (TryNumber(item, out var number)) return HashCode.Combine(number);
        switch (item)
        {
            case string s: return StringComparer.Ordinal.GetHashCode(s);
            case byte[] bytes:
                var hash = new HashCode();
                hash.AddBytes(bytes);
                return hash.ToHashCode();
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
