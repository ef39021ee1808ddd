namespace Checkpointing.Abstractions;

/// <summary>Intersects two layouts of the same tensor, to copy what a saved chunk and a loading rank's part have in common (docs/format.md#sharded-tensors-and-resharding).</summary>
public static class LayoutOverlap
{
    /// <summary>The elements <paramref name="source"/> and <paramref name="destination"/> both hold, as runs in increasing global order.</summary>
    public static IEnumerable<SharedElements> Between(TensorLayout source, TensorLayout destination)
    {
        // Both start where the later of the two begins: neither walks runs the other cannot share.
        var from = Math.Max(source.Runs().FirstOrDefault().GlobalStart, destination.Runs().FirstOrDefault().GlobalStart);
        using var a = source.RunsFrom(from).GetEnumerator();
        using var b = destination.RunsFrom(from).GetEnumerator();
        if (!a.MoveNext() || !b.MoveNext()) yield break;
        while (true)
        {
            var (ra, rb) = (a.Current, b.Current);
            var start = Math.Max(ra.GlobalStart, rb.GlobalStart);
            var end = Math.Min(ra.GlobalStart + ra.Length, rb.GlobalStart + rb.Length);
            if (start < end) yield return new SharedElements(start, end - start, ra.LocalStart + (start - ra.GlobalStart), rb.LocalStart + (start - rb.GlobalStart));
            // Advance whichever run ends first (both when they end together).
            var aEnd = ra.GlobalStart + ra.Length;
            var bEnd = rb.GlobalStart + rb.Length;
            if (aEnd <= bEnd && !a.MoveNext()) yield break;
            if (bEnd <= aEnd && !b.MoveNext()) yield break;
        }
    }
}
