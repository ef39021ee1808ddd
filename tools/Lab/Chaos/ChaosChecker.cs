using System.Globalization;
using Checkpointing.Abstractions;
using Checkpointing.Cli;
using Checkpointing.Contracts;
using Checkpointing.Formats;

namespace Checkpointing.Lab.Chaos;

/// <summary>
/// The invariants of issue 14, checked from outside: through the run grains (as an operator) and by
/// reading the blob store directly, never through the agents that wrote it.
/// </summary>
public sealed class ChaosChecker(IClusterClient client, ICheckpointStore store)
{
    /// <summary>
    /// Every checkpoint rank 0 was told is committed is in the catalog, unless retention evicted it (the
    /// catalog then holds <paramref name="maxToKeep"/> newer ones; null: nothing is evicted); every catalog entry is listed once, its own shards
    /// are all of the attempt the catalog names, and it loads bit-exact: shard checksums, and every tensor's
    /// bytes hash to the XxHash128 the rank computed from its memory before writing.
    /// </summary>
    public async Task CheckCatalogAsync(RunId run, int? maxToKeep, IReadOnlyList<string> acknowledged, ChaosFindings findings, bool loadEverything)
    {
        var view = await client.GetGrain<ITrainingRunGrain>(run.Key).Get();
        foreach (var name in view.Catalog.GroupBy(c => c.Name).Where(g => g.Count() > 1).Select(g => g.Key))
            findings.Double($"{run}: {name} is in the catalog {view.Catalog.Count(c => c.Name == name)} times");
        var catalog = view.Catalog.ToDictionary(c => c.Name, c => c, StringComparer.Ordinal);
        foreach (var told in acknowledged.Distinct())
        {
            if (catalog.ContainsKey(told)) continue;
            var newer = view.Catalog.Count(c => c.Iteration > IterationOf(told));
            if (maxToKeep is null || newer < maxToKeep) findings.Lost($"{run}: {told} was acknowledged as committed but is not in the catalog (only {newer} newer checkpoints there)");
        }
        if (!loadEverything) return;
        foreach (var record in view.Catalog)
        {
            var folder = StoreLayout.CheckpointKeyOf(record.ManifestKey);
            try
            {
                var manifest = await NativeCheckpointReader.ReadManifestAsync(store, folder);
                foreach (var shard in manifest.Shards.Where(s => s.Checkpoint is null))
                {
                    if (StoreLayout.AttemptOf(Path.GetFileName(shard.Path)) != record.AttemptId)
                        findings.Double($"{run}: {record.Name} holds {shard.Path}, not of its committed attempt {record.AttemptId}");
                }
                var loaded = StateTree.Flatten(await NativeCheckpointReader.LoadAsync(store, folder, manifest, HostTensor.Allocator), v => v as HostTensor).Tensors
                    .ToDictionary(t => t.Key, t => t.Source, StringComparer.Ordinal);
                foreach (var (key, info) in manifest.Tensors)
                {
                    if (info.Hash is null) findings.Error($"{run}: {record.Name} tensor '{key}' has no content hash (the agents save incrementally, which records one)");
                    else if (!loaded.TryGetValue(key, out var tensor) || TensorHash.Of(tensor) != info.Hash)
                        findings.Lost($"{run}: {record.Name} tensor '{key}' does not hash to what its rank saved");
                }
            }
            catch (Exception e) when (e is CheckpointFormatException or CheckpointNotFoundException or IOException or InvalidDataException)
            {
                findings.Lost($"{run}: {record.Name} is in the catalog but does not load: {CliFailure.OneLine(e.Message)}");
            }
        }
    }

    /// <summary>
    /// Blobs of the checkpoint container that no retained manifest accounts for (a manifest, or a shard a
    /// retained manifest references, its own or reused). Asked after GC settled: no pending attempt and no
    /// owed deletion should be left.
    /// </summary>
    public async Task<IReadOnlyList<string>> OrphanBlobsAsync(IEnumerable<RunId> runs)
    {
        var accounted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var run in runs)
        {
            foreach (var record in (await client.GetGrain<ITrainingRunGrain>(run.Key).Get()).Catalog)
            {
                var folder = StoreLayout.CheckpointKeyOf(record.ManifestKey);
                accounted.Add(record.ManifestKey);
                var manifest = await NativeCheckpointReader.ReadManifestAsync(store, folder);
                foreach (var shard in manifest.Shards) accounted.Add(StoreLayout.ShardKey(folder, shard));
            }
        }
        var orphans = new List<string>();
        await foreach (var entry in store.ListAsync("")) if (!accounted.Contains(entry.Key)) orphans.Add(entry.Key);
        return orphans;
    }

    public static long IterationOf(string name) =>
        long.TryParse(name.AsSpan(name.LastIndexOf('_') + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var iteration) ? iteration : long.MaxValue;
}
