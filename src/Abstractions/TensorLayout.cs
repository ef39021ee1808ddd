namespace Checkpointing.Abstractions;

/// <summary>
/// The part of a tensor one rank holds (docs/format.md#sharded-tensors-and-resharding): the tensor's global shape and either a box
/// (an offset and a local extent in every dimension; tensor parallelism, any split dimension, uneven
/// splits) or a flat range of its row-major elements (an FSDP/ZeRO slice of a flattened parameter,
/// held as a 1-D tensor). TorchSharp has no DTensor, so the caller declares layouts.
/// </summary>
public sealed class TensorLayout
{
    private TensorLayout(long[] globalShape, long[]? offsets, long[] localShape, long? flatOffset)
    {
        GlobalShape = globalShape;
        Offsets = offsets;
        LocalShape = localShape;
        FlatOffset = flatOffset;
    }

    /// <summary>The shape of the whole tensor, of which this rank holds a part.</summary>
    public long[] GlobalShape { get; }

    /// <summary>The box's first index in every dimension; null for a flat range.</summary>
    public long[]? Offsets { get; }

    /// <summary>The shape of the tensor this rank holds: the box's extent, or [count] for a flat range.</summary>
    public long[] LocalShape { get; }

    /// <summary>The first row-major element of a flat range; null for a box.</summary>
    public long? FlatOffset { get; }

    /// <summary>True for a flat range of row-major elements, false for a box.</summary>
    public bool IsFlat => FlatOffset is not null;

    /// <summary>How many elements the whole tensor has.</summary>
    public long GlobalElements => Product(GlobalShape);

    /// <summary>How many elements this rank holds.</summary>
    public long LocalElements => Product(LocalShape);

    /// <summary>True when this rank holds every element, in the global shape.</summary>
    public bool IsWhole => Offsets is not null && LocalShape.SequenceEqual(GlobalShape);

    /// <summary>A box holding every element of a tensor of shape <paramref name="globalShape"/>.</summary>
    /// <exception cref="ArgumentException">a shape with a negative dimension</exception>
    /// <exception cref="OverflowException">a shape whose element count overflows a long</exception>
    public static TensorLayout Whole(long[] globalShape) => Box(globalShape, new long[globalShape.Length], globalShape);

    /// <exception cref="ArgumentException">a box that does not fit in the global shape</exception>
    public static TensorLayout Box(long[] globalShape, long[] offsets, long[] localShape)
    {
        CheckShape(globalShape, nameof(globalShape));
        if (offsets.Length != globalShape.Length || localShape.Length != globalShape.Length)
            throw new ArgumentException($"A box of a {globalShape.Length}-d tensor needs {globalShape.Length} offsets and extents, got {offsets.Length} and {localShape.Length}.");
        for (var d = 0; d < globalShape.Length; d++)
        {
            if (offsets[d] < 0 || localShape[d] < 0 || offsets[d] > globalShape[d] - localShape[d])
                throw new ArgumentException($"Dimension {d}: [{offsets[d]}, {offsets[d]} + {localShape[d]}) is not within 0..{globalShape[d]}.");
        }
        return new TensorLayout([.. globalShape], [.. offsets], [.. localShape], null);
    }

    /// <exception cref="ArgumentException">a range that does not fit in the tensor's elements</exception>
    public static TensorLayout Flat(long[] globalShape, long flatOffset, long count)
    {
        CheckShape(globalShape, nameof(globalShape));
        var total = Product(globalShape);
        if (flatOffset < 0 || count < 0 || flatOffset > total - count)
            throw new ArgumentException($"Flat range [{flatOffset}, {flatOffset} + {count}) is not within the tensor's {total} elements.");
        return new TensorLayout([.. globalShape], null, [count], flatOffset);
    }

    /// <summary>
    /// Part <paramref name="part"/> of <paramref name="parts"/> along <paramref name="dim"/>, as <c>torch.tensor_split</c>
    /// cuts it: the first <c>size % parts</c> parts get one more index; parts past the end are empty.
    /// </summary>
    public static TensorLayout Split(long[] globalShape, int dim, int part, int parts)
    {
        CheckShape(globalShape, nameof(globalShape));
        if (dim < 0 || dim >= globalShape.Length) throw new ArgumentOutOfRangeException(nameof(dim), dim, $"A {globalShape.Length}-d tensor has no dimension {dim}.");
        var (start, length) = Part(globalShape[dim], part, parts);
        var offsets = new long[globalShape.Length];
        var local = (long[])globalShape.Clone();
        offsets[dim] = start;
        local[dim] = length;
        return Box(globalShape, offsets, local);
    }

    /// <summary>Part <paramref name="part"/> of <paramref name="parts"/> of the flattened tensor, cut as <see cref="Split"/> cuts a dimension.</summary>
    public static TensorLayout FlatSplit(long[] globalShape, int part, int parts)
    {
        CheckShape(globalShape, nameof(globalShape));
        var (start, length) = Part(Product(globalShape), part, parts);
        return Flat(globalShape, start, length);
    }

    private static (long Start, long Length) Part(long size, int part, int parts)
    {
        if (parts < 1) throw new ArgumentOutOfRangeException(nameof(parts), parts, "At least one part.");
        if (part < 0 || part >= parts) throw new ArgumentOutOfRangeException(nameof(part), part, $"Part must be in 0..{parts - 1}.");
        var small = size / parts;
        var extra = size % parts;
        return (part * small + Math.Min(part, extra), small + (part < extra ? 1 : 0));
    }

    /// <summary>How many runs <see cref="Runs"/> yields, without producing them (to budget work on untrusted layouts).</summary>
    public long RunCount
    {
        get
        {
            if (LocalElements == 0) return 0;
            if (IsFlat) return 1;
            var split = LastPartialDimension();
            return split < 0 ? 1 : Product(LocalShape.AsSpan(0, split));
        }
    }

    /// <summary>
    /// The held elements as maximal runs of consecutive row-major global indices, in increasing global order:
    /// each run's first global element, its length and its first element's index in the local tensor.
    /// </summary>
    public IEnumerable<ElementRun> Runs() => RunsFrom(0);

    /// <summary>
    /// <see cref="Runs"/> from the first run that ends after global element <paramref name="from"/> (found by bisection,
    /// so that intersecting a small layout with a large one does not walk the large one's runs from its start).
    /// </summary>
    public IEnumerable<ElementRun> RunsFrom(long from)
    {
        if (LocalElements == 0) yield break;
        if (FlatOffset is { } flat)
        {
            if (flat + LocalShape[0] > from) yield return new ElementRun(flat, LocalShape[0], 0);
            yield break;
        }
        var split = LastPartialDimension();
        if (split < 0)
        {
            if (LocalElements > from) yield return new ElementRun(0, LocalElements, 0);
            yield break;
        }
        var strides = Strides(GlobalShape);
        var runLength = LocalShape[split] * strides[split];
        var baseStart = 0L;
        for (var d = 0; d <= split; d++) baseStart += Offsets![d] * strides[d];
        var count = RunCount;
        // Runs start in increasing global order: bisect for the first that ends after `from`.
        long lo = 0, hi = count;
        while (lo < hi)
        {
            var mid = lo + (hi - lo) / 2;
            if (RunStart(mid, split, strides, baseStart) + runLength <= from) lo = mid + 1;
            else hi = mid;
        }
        // An odometer over the dimensions before the split one (no recursion: any rank), started at run `lo`.
        var index = Coordinates(lo, split);
        for (var run = lo; run < count; run++)
        {
            var start = baseStart;
            for (var d = 0; d < split; d++) start += index[d] * strides[d];
            yield return new ElementRun(start, runLength, run * runLength);
            for (var carry = split - 1; carry >= 0 && ++index[carry] == LocalShape[carry]; carry--) index[carry] = 0;
        }
    }

    /// <summary>Run <paramref name="run"/>'s position in the dimensions before <paramref name="split"/> (row-major over the local extents).</summary>
    private long[] Coordinates(long run, int split)
    {
        var index = new long[split];
        for (var d = split - 1; d >= 0; d--)
        {
            index[d] = run % LocalShape[d];
            run /= LocalShape[d];
        }
        return index;
    }

    private long RunStart(long run, int split, long[] strides, long baseStart)
    {
        var start = baseStart;
        var index = Coordinates(run, split);
        for (var d = 0; d < split; d++) start += index[d] * strides[d];
        return start;
    }

    /// <summary>The last dimension whose extent is not the global one (every later one is whole); -1 when the box is the whole tensor.</summary>
    private int LastPartialDimension()
    {
        for (var d = GlobalShape.Length - 1; d >= 0; d--)
        {
            if (LocalShape[d] != GlobalShape[d]) return d;
        }
        return -1;
    }

    /// <summary>Row-major element strides of a shape.</summary>
    public static long[] Strides(long[] shape)
    {
        var strides = new long[shape.Length];
        long stride = 1;
        for (var d = shape.Length - 1; d >= 0; d--)
        {
            strides[d] = stride;
            stride = checked(stride * shape[d]);
        }
        return strides;
    }

    /// <summary>The layout for messages: "[0:2, 4:8] of [4, 8]" for a box, "elements [a, b) of [shape]" for a flat range.</summary>
    public override string ToString() => IsFlat
        ? $"elements [{FlatOffset}, {FlatOffset + LocalShape[0]}) of [{string.Join(", ", GlobalShape)}]"
        : $"[{string.Join(", ", Offsets!.Select((o, d) => $"{o}:{o + LocalShape[d]}"))}] of [{string.Join(", ", GlobalShape)}]";

    private static long Product(ReadOnlySpan<long> shape)
    {
        long product = 1;
        foreach (var d in shape) product = checked(product * d);
        return product;
    }

    private static void CheckShape(long[] shape, string name)
    {
        if (shape.Any(d => d < 0)) throw new ArgumentException($"Shape [{string.Join(", ", shape)}] has a negative dimension.", name);
        _ = Product(shape); // overflow is an error here, not later
    }
}
