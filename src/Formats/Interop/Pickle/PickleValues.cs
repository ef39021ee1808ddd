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
/// <remarks>
/// The walk uses an explicit stack, so the input's nesting never reaches the call stack. A container
/// met again while it is still being converted is a cycle, which a checkpoint cannot hold. Every
/// consumer of the result walks it as a tree, so the tree's size counts a shared container once per
/// place it appears and its depth is that of the deepest path; both are bounded by the budget.
/// </remarks>
internal sealed class PickleValues
{
    private readonly BudgetMeter _meter;
    private readonly Dictionary<object, Converted> _done = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<object> _inProgress = new(ReferenceEqualityComparer.Instance);
    private readonly Stack<Frame> _frames = new();

    private PickleValues(BudgetMeter meter) => _meter = meter;

    public static object? ToStateValue(object? raw, BudgetMeter meter)
    {
        try
        {
            return new PickleValues(meter).Convert(raw);
        }
        catch (PickleDataException e)
        {
            throw new CheckpointFormatException(meter.Source, e.Check, e.Message, e);
        }
    }

    /// <summary>A converted value with the size (nodes, saturating) and depth of the tree it stands for.</summary>
    private readonly record struct Converted(object? Value, long Size, int Depth);

    /// <summary>A container being converted: its items (a dict's as key, value, key, value, ...) and what they became.</summary>
    private sealed class Frame(object raw, IReadOnlyList<object?> items)
    {
        public object Raw { get; } = raw;
        public IReadOnlyList<object?> Items { get; } = items;
        public List<object?> Results { get; } = new(items.Count);
        public long Size { get; set; } = 1;
        public int ChildDepth { get; set; }
    }

    private object? Convert(object? root)
    {
        if (Leaf(root) is { } scalar) return scalar.Value;
        Enter(root!);
        while (true)
        {
            _meter.Tick();
            var frame = _frames.Peek();
            if (frame.Results.Count < frame.Items.Count)
            {
                var item = frame.Items[frame.Results.Count];
                if (Leaf(item) is { } known) Add(frame, known);
                else Enter(item!);
                continue;
            }
            _frames.Pop();
            var finished = Finish(frame);
            if (!_frames.TryPeek(out var parent)) return finished.Value;
            Add(parent, finished);
        }
    }

    /// <summary>A scalar (size 1, depth 0), an already converted container, or null when <paramref name="raw"/> is a container to walk.</summary>
    private Converted? Leaf(object? raw)
    {
        switch (raw)
        {
            case null or bool or long or double or string or byte[] or HostTensor: return new Converted(raw, 1, 0);
            case IPickleValue value: return new Converted(value.ToValue(), 1, 0);
            case PyGlobal global: throw new PickleDataException($"global '{global.Name}' is used as a value, which a checkpoint cannot hold");
        }
        if (_done.TryGetValue(raw, out var done)) return done;
        if (_inProgress.Contains(raw))
            throw new PickleDataException($"a {Describe(raw)} contains itself (a reference cycle), which a checkpoint cannot hold", "cycle");
        return null;
    }

    /// <summary>Starts walking a container: its value is known once its frame finishes.</summary>
    private void Enter(object raw)
    {
        if (_frames.Count >= _meter.Budget.MaxDepth) throw DepthExceeded();
        IReadOnlyList<object?> items = raw switch
        {
            object?[] tuple => tuple,
            List<object?> list => list,
            PySet set => set.Items,
            PyDict dict => new DictItems(dict),
            _ => throw new PickleDataException($"a {raw.GetType().Name} cannot be a checkpoint value"),
        };
        _inProgress.Add(raw);
        _frames.Push(new Frame(raw, items));
    }

    private void Add(Frame frame, Converted child)
    {
        frame.Results.Add(child.Value);
        frame.Size = Math.Min(frame.Size + child.Size, _meter.Budget.MaxObjects + 1);
        frame.ChildDepth = Math.Max(frame.ChildDepth, child.Depth);
    }

    private Converted Finish(Frame frame)
    {
        var depth = frame.ChildDepth + 1;
        if (depth > _meter.Budget.MaxDepth) throw DepthExceeded();
        if (frame.Size > _meter.Budget.MaxObjects)
            throw _meter.Exceeded($"the loaded value has more than {_meter.Budget.MaxObjects} nodes, counting a shared value once per place it appears (limit {nameof(ReadBudget.MaxObjects)} = {_meter.Budget.MaxObjects})");
        object value = frame.Raw switch
        {
            PyDict dict when dict.Items.Keys.All(k => k is string) => NamedDict(dict.IsOrderedDict, frame.Results),
            PyDict => KeyedDict(frame.Results),
            _ => frame.Results,
        };
        _inProgress.Remove(frame.Raw);
        var converted = new Converted(value, frame.Size, depth);
        _done[frame.Raw] = converted;
        return converted;
    }

    private static OrderedDictionary<string, object?> NamedDict(bool ordered, List<object?> pairs)
    {
        var named = ordered ? new PythonOrderedDict() : new OrderedDictionary<string, object?>(pairs.Count / 2, StringComparer.Ordinal);
        for (var i = 0; i < pairs.Count; i += 2) named.Add((string)pairs[i]!, pairs[i + 1]);
        return named;
    }

    private static OrderedDictionary<object, object?> KeyedDict(List<object?> pairs)
    {
        var keyed = new OrderedDictionary<object, object?>(pairs.Count / 2);
        for (var i = 0; i < pairs.Count; i += 2) keyed.Add(pairs[i]!, pairs[i + 1]);
        return keyed;
    }

    private CheckpointFormatException DepthExceeded() =>
        _meter.Exceeded($"values are nested more than {_meter.Budget.MaxDepth} levels deep (limit {nameof(ReadBudget.MaxDepth)} = {_meter.Budget.MaxDepth})");

    private static string Describe(object raw) => raw switch
    {
        object?[] => "tuple",
        List<object?> => "list",
        PySet => "set",
        PyDict => "dict",
        _ => raw.GetType().Name,
    };

    /// <summary>A dict's entries flattened to key, value, key, value, ... without copying them.</summary>
    private sealed class DictItems(PyDict dict) : IReadOnlyList<object?>
    {
        public int Count => dict.Items.Count * 2;

        public object? this[int index]
        {
            get
            {
                var (key, value) = dict.Items.GetAt(index / 2);
                return index % 2 == 0 ? key : value;
            }
        }

        public IEnumerator<object?> GetEnumerator()
        {
            for (var i = 0; i < Count; i++) yield return this[i];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
