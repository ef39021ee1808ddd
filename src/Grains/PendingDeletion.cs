
namespace Checkpointing.Grains;

/// <summary>
/// Blobs to delete. With <see cref="WorldSize"/> known, the names are computed (the manifest when
/// <see cref="IncludesManifest"/>, and the attempt's shards), so no listing is needed; entries saved
/// by the first release (WorldSize null) list the folder: the whole folder, or one attempt's shards.
/// With <see cref="Keys"/>, exactly those store keys (what an eviction frees while other shards of the
/// checkpoint are still reused), each only if nothing live needs it when the deletion runs.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record PendingDeletion(
    [property: Id(0)] string CheckpointPrefix,
    [property: Id(1)] string? AttemptId,
    [property: Id(2)] int? WorldSize = null,
    [property: Id(3)] bool IncludesManifest = false,
    [property: Id(4)] IReadOnlyList<string>? Keys = null);
