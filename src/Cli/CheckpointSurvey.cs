using Checkpointing.Abstractions;
using Checkpointing.Formats;
using Checkpointing.Storage;
using Checkpointing.Core;

namespace Checkpointing.Cli;

/// <summary>
/// What <c>ckpt ls</c> shows of a save folder: every committed checkpoint, sound or damaged. One
/// bad manifest or missing shard marks that checkpoint; it never hides the others.
/// </summary>
public sealed record CheckpointSurvey(IReadOnlyList<CatalogEntry> Sound, IReadOnlyList<DamagedCheckpoint> Damaged, string? Last, string? TagProblem)
{
    /// <summary>
    /// Surveys the save folder <paramref name="dir"/>: reads each committed checkpoint's manifest and checks that every shard it
    /// names is present with its recorded length (not its bytes). Sound checkpoints come ordered by iteration, then creation time,
    /// then name. A damaged checkpoint or tag is recorded with its problem, never thrown.
    /// </summary>
    public static async Task<CheckpointSurvey> OfFolderAsync(string dir)
    {
        var store = new FileSystemStore(dir);
        var catalog = new LocalCatalog(store);
        var sound = new List<CatalogEntry>();
        var damaged = new List<DamagedCheckpoint>();
        foreach (var name in await catalog.ListNamesAsync())
        {
            try
            {
                var m = await NativeCheckpointReader.ReadManifestAsync(store, name);
                await CheckShardsPresentAsync(store, name, m);
                sound.Add(CatalogEntry.Of(name, m));
            }
            catch (Exception e) when (IsDamage(e))
            {
                damaged.Add(new DamagedCheckpoint(name, CliFailure.OneLine(e.Message)));
            }
        }

        string? last = null, tagProblem = null;
        try
        {
            last = await catalog.GetLastAsync();
        }
        catch (Exception e) when (IsDamage(e))
        {
            tagProblem = CliFailure.OneLine(e.Message);
        }
        // A tag may name a .pth checkpoint file (Checkpointer's Pth format), which ls does not list.
        if (last is not null && sound.All(e => e.Name != last) && !(TorchFiles.IsTorchFile(last) && File.Exists(store.PathOf(last))))
        {
            tagProblem = $"{LocalCatalog.TagFile} names '{last}', which {(damaged.Any(d => d.Name == last) ? "is damaged" : "is not a checkpoint in this folder")}";
        }
        var ordered = sound.OrderBy(e => e.Iteration ?? long.MaxValue).ThenBy(e => e.CreatedUtc).ThenBy(e => e.Name, StringComparer.Ordinal).ToList();
        return new CheckpointSurvey(ordered, damaged, last, tagProblem);
    }

    /// <summary>Every shard the manifest names exists with its recorded length (a cheap check; <c>ckpt verify</c> reads the bytes).</summary>
    private static async Task CheckShardsPresentAsync(ICheckpointStore store, string name, CheckpointManifest manifest)
    {
        foreach (var shard in manifest.Shards)
        {
            var key = StoreLayout.ShardKey(name, shard);
            var entry = await store.GetEntryAsync(key)
                ?? throw new CheckpointFormatException(key, "presence", shard.Checkpoint is null ? "shard is missing" : $"shard is missing (reused from checkpoint '{shard.Checkpoint}')");
            if (entry.Length != shard.Bytes)
                throw new CheckpointFormatException(key, "length", $"manifest records {shard.Bytes} bytes, the file has {entry.Length}");
        }
    }

    private static bool IsDamage(Exception e) =>
        e is CheckpointFormatException or InvalidDataException or IOException or UnauthorizedAccessException;
}
