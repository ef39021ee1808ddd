namespace Checkpointing.Abstractions;

/// <summary>
/// Checks that the chunks of every sharded tensor hold each of its elements exactly once, with the tensor's dtype, and
/// that no chunk's bytes serve twice. Used by the manifest reader (untrusted files) and by the run grain before a commit.
/// Work is bounded whatever the input: boxes are checked on the grid their edges cut, flat chunks as runs of elements,
/// and the cells and runs of all the tensors of a manifest together are at most <see cref="MaxWork"/>.
/// </summary>
public static class ShardedTensorCheck
{
    /// <summary>The most grid cells and element runs, over all the sharded tensors of a manifest, that a check examines; a manifest needing more is refused.</summary>
    public const long MaxWork = 16_000_000;

    /// <summary>The first problem found, or null when every sharded tensor is exactly covered.</summary>
    public static string? Problem(IReadOnlyDictionary<string, TensorInfo> tensors, IReadOnlyDictionary<string, ShardedTensorInfo> sharded)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        var budget = MaxWork;
        foreach (var (key, info) in sharded)
        {
            if (tensors.ContainsKey(key)) return $"sharded tensor '{key}' is also a whole tensor";
            var layouts = new List<TensorLayout>(info.Chunks.Count);
            foreach (var chunk in info.Chunks)
            {
                if (!tensors.TryGetValue(chunk.Tensor, out var stored)) return $"sharded tensor '{key}' names chunk '{chunk.Tensor}', which the index lacks";
                if (!used.Add(chunk.Tensor)) return $"chunk '{chunk.Tensor}' serves twice";
                if (stored.DType != info.DType) return $"chunk '{chunk.Tensor}' is {stored.DType}, sharded tensor '{key}' is {info.DType}";
                if ((chunk.Offsets is null) == (chunk.FlatOffset is null)) return $"chunk '{chunk.Tensor}' of '{key}' needs either offsets or a flat offset";
                TensorLayout layout;
                try { layout = chunk.Layout(info.Shape, stored); }
                catch (ArgumentException e) { return $"chunk '{chunk.Tensor}' of '{key}': {e.Message}"; }
                catch (OverflowException) { return $"sharded tensor '{key}' has a shape whose element count overflows"; }
                if (layout.LocalElements == 0) return $"chunk '{chunk.Tensor}' of '{key}' holds no element";
                layouts.Add(layout);
            }
            var problem = layouts.All(l => !l.IsFlat) ? BoxCoverage(info.Shape, layouts, ref budget) : RunCoverage(info.Shape, layouts, ref budget);
            if (problem is not null) return $"sharded tensor '{key}': {problem}";
        }
        return null;
    }

    /// <summary>Every cell of the grid cut by the boxes' edges must lie in exactly one box.</summary>
    private static string? BoxCoverage(long[] shape, List<TensorLayout> boxes, ref long budget)
    {
        var rank = shape.Length;
        var cuts = new long[rank][];
        for (var d = 0; d < rank; d++)
        {
            var dim = d;
            cuts[d] = boxes.SelectMany(b => new[] { b.Offsets![dim], b.Offsets[dim] + b.LocalShape[dim] }).Append(0).Append(shape[d]).Distinct().Order().ToArray();
        }
        long cells = 1;
        foreach (var c in cuts)
        {
            cells *= Math.Max(c.Length - 1, 0);
            if (cells > budget) return $"its chunks cut it into more cells than the {MaxWork} a manifest may need checked";
        }
        budget -= cells;
        var covered = new bool[cells];
        var strides = new long[rank];
        for (long d = rank - 1, stride = 1; d >= 0; d--)
        {
            strides[d] = stride;
            stride *= cuts[d].Length - 1;
        }
        foreach (var box in boxes)
        {
            var from = new long[rank];
            var to = new long[rank];
            for (var d = 0; d < rank; d++)
            {
                from[d] = Array.BinarySearch(cuts[d], box.Offsets![d]);
                to[d] = Array.BinarySearch(cuts[d], box.Offsets[d] + box.LocalShape[d]);
            }
            var index = (long[])from.Clone();
            while (true)
            {
                long cell = 0;
                for (var d = 0; d < rank; d++) cell += index[d] * strides[d];
                if (covered[cell]) return $"chunk at {box} overlaps another";
                covered[cell] = true;
                var carry = rank - 1;
                while (carry >= 0 && ++index[carry] == to[carry]) index[carry] = from[carry--];
                if (carry < 0) break;
            }
        }
        var gap = Array.IndexOf(covered, false);
        return gap < 0 ? null : "its chunks leave elements uncovered";
    }

    /// <summary>The chunks' runs of elements, sorted, must tile 0..N without gap or overlap.</summary>
    private static string? RunCoverage(long[] shape, List<TensorLayout> chunks, ref long budget)
    {
        foreach (var chunk in chunks)
        {
            // Each count is at most the tensor's elements; subtracting one at a time cannot overflow.
            budget -= chunk.RunCount;
            if (budget < 0) return $"its chunks split it into more runs of elements than the {MaxWork} a manifest may need checked";
        }
        var runs = chunks.SelectMany(c => c.Runs()).OrderBy(r => r.GlobalStart).ToList();
        long next = 0;
        foreach (var run in runs)
        {
            if (run.GlobalStart < next) return $"chunks overlap at element {run.GlobalStart}";
            if (run.GlobalStart > next) return $"elements [{next}, {run.GlobalStart}) are in no chunk";
            next = run.GlobalStart + run.Length;
        }
        var total = shape.Aggregate(1L, (p, d) => p * d);
        return next == total ? null : $"elements [{next}, {total}) are in no chunk";
    }
}
