namespace Checkpointing.Core;

/// <summary>What did not load cleanly into the model (fvcore's <c>_IncompatibleKeys</c>).</summary>
/// <param name="MissingKeys">Model state-dict keys that were not loaded, so keep their values: absent from the checkpoint, or
/// there with another shape (then also in <paramref name="IncorrectShapes"/>).</param>
/// <param name="UnexpectedKeys">Checkpoint keys the model has no tensor for; they were ignored.</param>
/// <param name="IncorrectShapes">Key, shape in the checkpoint, shape in the model.</param>
public sealed record IncompatibleKeys(
    IReadOnlyList<string> MissingKeys,
    IReadOnlyList<string> UnexpectedKeys,
    IReadOnlyList<(string Key, long[] CheckpointShape, long[] ModelShape)> IncorrectShapes);
