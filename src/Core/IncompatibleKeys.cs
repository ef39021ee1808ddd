namespace Checkpointing.Core;

/// <summary>What did not load cleanly into the model (fvcore's <c>_IncompatibleKeys</c>).</summary>
/// <param name="IncorrectShapes">Key, shape in the checkpoint, shape in the model.</param>
public sealed record IncompatibleKeys(
    IReadOnlyList<string> MissingKeys,
    IReadOnlyList<string> UnexpectedKeys,
    IReadOnlyList<(string Key, long[] CheckpointShape, long[] ModelShape)> IncorrectShapes);
