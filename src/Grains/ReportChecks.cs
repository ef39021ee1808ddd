using System.Text.Json;
using System.Text.Json.Nodes;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;

namespace Checkpointing.Grains;

/// <summary>
/// What a run grain checks of the ranks' shard reports before it commits (docs/cluster.md): each report on its own as it
/// arrives, the manifest their union makes, and, for quotas, the stored size of every shard.
/// </summary>
internal static class ReportChecks
{
    /// <summary>Checks one report on its own and returns rank 0's state tree; the union of all reports is checked by <see cref="BuildManifest"/>.</summary>
    public static JsonObject? Check(PendingCheckpoint pending, ShardReport report)
    {
        RequestBounds.RankInWorld(report.Rank, pending.WorldSize);
        RequestBounds.ShardReport(report);
        var shardName = StoreLayout.ShardName(report.Rank, pending.WorldSize, pending.AttemptId);
        if (report.Shard.Path != shardName)
            throw new RunRefusedException($"Rank {report.Rank} reported shard '{report.Shard.Path}', the plan says '{shardName}'.");
        var chunks = report.ChunkKeys.Count(report.Tensors.ContainsKey);
        if (report.Tensors.Count - chunks > pending.Tensors.Count)
            throw new RunRefusedException($"Rank {report.Rank}'s shard holds {report.Tensors.Count - chunks} whole tensors; the checkpoint has {pending.Tensors.Count}.");
        var reused = report.Reused ?? [];
        if (reused.Any(r => r.Checkpoint is not { } holder || !CheckpointName.IsValid(holder) || holder == pending.Name || !StoreLayout.IsShard(r.Path)))
            throw new RunRefusedException($"Rank {report.Rank} reuses a shard that is not one of another checkpoint of the run.");
        if (report.Tensors.Values.Any(t => (t.Shard != report.Rank && (t.Shard < pending.WorldSize || t.Shard >= pending.WorldSize + reused.Count))
            || t.DataOffsets is not [>= 0, var end] || end < t.DataOffsets[0]))
            throw new RunRefusedException($"Rank {report.Rank}'s tensor index must point at shard {report.Rank} (or at a shard it reuses) with valid offsets.");
        if (report.Rank != 0) return null;
        try
        {
            return JsonNode.Parse(report.StateJson ?? throw new RunRefusedException("Rank 0 must report the non-tensor state.")) as JsonObject
                ?? throw new RunRefusedException("Rank 0's state is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new RunRefusedException($"Rank 0's state is not valid JSON: {e.Message}");
        }
    }

    /// <summary>
    /// The manifest the reports make, refused when a reader would refuse it. Pure computation on what the ranks sent: any
    /// failure is final (a refusal), never a fault that reporting again could cure.
    /// </summary>
    public static (CheckpointManifest Manifest, byte[] Bytes) BuildManifest(CommitCollector collector, RunId run, string folder, DateTimeOffset now)
    {
        try
        {
            var manifest = collector.BuildManifest(run.Key, now);
            return (manifest, ManifestBuilder.Serialize(manifest, folder));
        }
        catch (Exception e) when (e is not RunRefusedException)
        {
            throw new RunRefusedException($"The ranks' reports of {collector.Pending.Name} do not make a readable checkpoint: {e.Message}");
        }
    }

    /// <summary>
    /// Quotas count what the store holds, not what ranks declare: each shard this checkpoint wrote must be in the store with
    /// the length its rank reported, or the commit is refused (a rank that declared 40 bytes for a 4 MB shard would have
    /// been charged 40). A storage fault here is not a refusal: the ranks report again.
    /// </summary>
    public static async Task ThrowIfStoredSizesDifferAsync(ICheckpointStore store, CheckpointManifest manifest, string folder)
    {
        foreach (var shards in manifest.Shards.Where(shard => shard.Checkpoint is null).Chunk(RunJanitor.StoreRequestsInFlight))
        {
            var entries = await Task.WhenAll(shards.Select(shard => store.GetEntryAsync(StoreLayout.ShardKey(folder, shard))));
            foreach (var (shard, entry) in shards.Zip(entries))
            {
                if (entry?.Length != shard.Bytes)
                    throw new RunRefusedException(entry is null
                        ? $"Shard {shard.Path} of {manifest.Name} was reported but is not in the store."
                        : $"Shard {shard.Path} of {manifest.Name} was reported as {shard.Bytes:N0} bytes; the store holds {entry.Length:N0}.");
            }
        }
    }
}
