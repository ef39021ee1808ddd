namespace Checkpointing.Contracts;

/// <summary>A rank tells its run grain it loaded a checkpoint (for the history).</summary>
[GenerateSerializer, Immutable]
public sealed record LoadReport(
    [property: Id(0)] string Name,
    [property: Id(1)] int Rank,
    [property: Id(2)] long Epoch,
    [property: Id(3)] double Seconds,
    [property: Id(4)] long Bytes);
