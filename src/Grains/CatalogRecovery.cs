using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;

namespace Checkpointing.Grains;

/// <summary>
/// Finds the committed checkpoints of a run that are in the store but not in its catalog (the run's state was lost: a
/// storage restore, an operator deleting it) and verifies each end to end (every shard's length, header and checksum,
/// the reused ones too), so that the run adopts only checkpoints a load would accept. A manifest of another run, or one
/// that does not verify, is refused with the reason.
/// </summary>
internal static class CatalogRecovery
{
    /// <param name="Adopt">Catalog records of the verified checkpoints, charged what the store holds (own shards and manifest).</param>
    /// <param name="Held">Shards that adopted checkpoints reuse from checkpoints that are not adopted (refused, or their manifest gone).</param>
    /// <param name="Refused">The checkpoints found but not adopted, each with the reason: an unreadable manifest, a manifest of another run or name, or a failed verification.</param>
    public sealed record Findings(IReadOnlyList<CheckpointRecord> Adopt, IReadOnlyList<HeldShards> Held, IReadOnlyList<RefusedCheckpoint> Refused);

    /// <summary>Adopts what <see cref="FindAsync"/> finds into the run's catalog and state (the caller writes them), and tags the newest checkpoint when the tag is lost.</summary>
    public static async Task<CatalogRecoveryReport> RecoverAsync(ICheckpointStore store, RunId run, RunState state, RunCatalog catalog)
    {
        var found = await FindAsync(store, run, state.Epoch, name => catalog.Find(name) is not null || state.Pending.ContainsKey(name));
        foreach (var record in found.Adopt) catalog.Insert(record);
        state.Held.AddRange(found.Held.Where(held => state.Held.All(h => h.Name != held.Name)));
        if (state.LastCheckpoint is not { } last || catalog.Find(last) is null) state.LastCheckpoint = catalog.Entries.LastOrDefault()?.Name;
        return new CatalogRecoveryReport(found.Adopt.Select(r => r.Name).ToList(), found.Refused, state.LastCheckpoint);
    }

    /// <summary>Reads the committed checkpoints under the run's prefix and verifies each one <paramref name="known"/> does not claim; writes nothing to the store or the run.</summary>
    /// <param name="store">The store holding the run's checkpoints.</param>
    /// <param name="run">The run whose prefix is searched; a manifest must name this run and its own folder to be adopted.</param>
    /// <param name="epoch">The run's current epoch, recorded in every adopted record.</param>
    /// <param name="known">Whether the catalog already lists a checkpoint of that name (it is neither verified nor adopted again).</param>
    /// <param name="ct">Cancels the listing and the verification.</param>
    public static async Task<Findings> FindAsync(ICheckpointStore store, RunId run, long epoch, Func<string, bool> known, CancellationToken ct = default)
    {
        var prefix = run.StorePrefix + "/";
        var snapshot = await RunCheckpoints.ReadCommittedAsync(store, prefix, ct);
        var refused = snapshot.Unreadable.Where(name => !known(name)).Select(name => new RefusedCheckpoint(name, "its manifest cannot be read")).ToList();
        var adopt = new List<CheckpointRecord>();
        foreach (var (name, manifest) in snapshot.Committed.Where(c => !known(c.Name)))
        {
            var key = prefix + name;
            try
            {
                if (manifest.Run != run.Key || manifest.Name != name)
                    throw new CheckpointFormatException(StoreLayout.ManifestKey(key), "identity", $"the manifest is of checkpoint '{manifest.Name}' of run '{manifest.Run}'");
                await NativeCheckpointReader.VerifyAsync(store, key, manifest, cancellationToken: ct);
                var manifestBytes = (await store.GetEntryAsync(StoreLayout.ManifestKey(key), ct))?.Length
                    ?? throw new CheckpointNotFoundException(key, store.Description);
                adopt.Add(RecordOf(name, manifest, manifestBytes, key, epoch));
            }
            catch (Exception e) when (e is CheckpointFormatException or CheckpointNotFoundException or StoreObjectNotFoundException)
            {
                refused.Add(new RefusedCheckpoint(name, e.Message));
            }
        }
        return new Findings(adopt, HeldFor(adopt, snapshot, known), refused);
    }

    private static CheckpointRecord RecordOf(string name, CheckpointManifest manifest, long manifestBytes, string key, long epoch)
    {
        var own = manifest.Shards.Where(s => s.Checkpoint is null).ToList();
        var reuses = manifest.Shards.Where(s => s.Checkpoint is not null).Select(s => StoreLayout.ReusedShard(s.Checkpoint!, s.Path)).ToList();
        var attempt = own.Select(s => StoreLayout.AttemptOf(s.Path)).FirstOrDefault(a => a is not null) ?? "recovered";
        return new CheckpointRecord(name, manifest.Iteration, own.Sum(s => s.Bytes) + manifestBytes, manifest.WorldSize, manifest.CreatedUtc,
            StoreLayout.ManifestKey(key), attempt, epoch, reuses.Count > 0 ? reuses : null);
    }

    /// <summary>Per holder that is neither adopted nor known, the shards of it that adopted checkpoints reuse, with their bytes.</summary>
    private static List<HeldShards> HeldFor(List<CheckpointRecord> adopt, RunSnapshot snapshot, Func<string, bool> known)
    {
        var adopted = adopt.Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        var manifests = snapshot.Committed.ToDictionary(c => c.Name, c => c.Manifest, StringComparer.Ordinal);
        var reused = adopt.SelectMany(record => manifests[record.Name].Shards.Where(s => s.Checkpoint is { } holder && !adopted.Contains(holder) && !known(holder)))
            .DistinctBy(s => StoreLayout.ReusedShard(s.Checkpoint!, s.Path));
        return reused.GroupBy(s => s.Checkpoint!, StringComparer.Ordinal)
            .Select(holder => new HeldShards(holder.Key, StoreLayout.AttemptOf(holder.First().Path) ?? "recovered", holder.Sum(s => s.Bytes), holder.Select(s => s.Path).ToList()))
            .ToList();
    }
}
