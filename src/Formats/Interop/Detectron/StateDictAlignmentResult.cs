namespace Checkpointing.Formats.Interop.Detectron;

/// <summary>What <see cref="StateDictAlignment.Align"/> decided, by name and shape only.</summary>
/// <param name="Matches">model key → checkpoint key, in model-key order</param>
/// <param name="Warnings">one text per checkpoint weight skipped for a shape mismatch</param>
/// <param name="UnmatchedCheckpointKeys">checkpoint keys no model key took, in order</param>
/// <param name="Report">detectron2's grouped table of what matched (or its "no weights matched" warning)</param>
public sealed record StateDictAlignmentResult(
    IReadOnlyList<KeyValuePair<string, string>> Matches,
    IReadOnlyList<string> Warnings,
    IReadOnlyList<string> UnmatchedCheckpointKeys,
    string Report)
{
    /// <summary>
    /// detectron2's returned state dict: every matched checkpoint value under its model key, then the
    /// unmatched checkpoint values under their own keys (for the loader to report as unexpected).
    /// With no match at all, the checkpoint unchanged.
    /// </summary>
    public OrderedDictionary<string, T> Apply<T>(IReadOnlyDictionary<string, T> checkpoint)
    {
        var result = new OrderedDictionary<string, T>(StringComparer.Ordinal);
        if (Matches.Count == 0)
        {
            foreach (var (key, value) in checkpoint) result.Add(key, value);
            return result;
        }
        foreach (var (modelKey, checkpointKey) in Matches) result.Add(modelKey, checkpoint[checkpointKey]);
        foreach (var key in UnmatchedCheckpointKeys) result.Add(key, checkpoint[key]);
        return result;
    }
}
