
namespace Checkpointing.Grains;

/// <summary>
/// What is left of a checkpoint that is no longer in the catalog while incremental checkpoints reuse some of its
/// shards: those shards (paths in its folder), kept until no retained checkpoint references them. Its
/// <see cref="Bytes"/> stay counted in the run's retained bytes until the last one goes (never under-counted).
/// </summary>
[GenerateSerializer, Immutable]
public sealed record HeldShards(
    [property: Id(0)] string Name,
    [property: Id(1)] string AttemptId,
    [property: Id(2)] long Bytes,
    [property: Id(3)] IReadOnlyList<string> Paths);
