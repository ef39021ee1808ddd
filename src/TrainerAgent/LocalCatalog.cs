using Checkpointing.Abstractions;
using Checkpointing.Formats;
using Checkpointing.Storage;

namespace Checkpointing.TrainerAgent;

/// <summary>One committed checkpoint as listed by a catalog.</summary>
public sealed record CatalogEntry(string Name, long? Iteration, long Bytes, DateTimeOffset CreatedUtc, int Tensors);

/// <summary>
/// The checkpoints of one save folder: a checkpoint is a sub-folder with a manifest, and the
/// fvcore-compatible <c>last_checkpoint</c> file holds the tagged name. The tag is replaced atomically.
/// </summary>
public sealed class LocalCatalog(ICheckpointStore store)
{
    public const string TagFile = "last_checkpoint";

    public ICheckpointStore Store { get; } = store;

    public async Task<string?> GetLastAsync(CancellationToken ct = default)
    {
        var text = await Store.ReadTextAsync(TagFile, ct).ConfigureAwait(false);
        return string.IsNullOrWhiteSpace(text) ? null : text.Trim();
    }

    public Task TagLastAsync(string name, CancellationToken ct = default) =>
        Store.WriteTextAsync(TagFile, CheckpointName.Validate(name), ct);

    /// <summary>Names of committed checkpoints (folders with a manifest), in ordinal order.</summary>
    public async Task<IReadOnlyList<string>> ListNamesAsync(CancellationToken ct = default)
    {
        var names = new List<string>();
        await foreach (var entry in Store.ListAsync("", ct).ConfigureAwait(false))
        {
            if (CommittedName(entry.Key) is { } name) names.Add(name);
        }
        return names;
    }

    /// <summary>The checkpoint a store key commits ("NAME/manifest.json" → NAME), or null for any other key.</summary>
    public static string? CommittedName(string key)
    {
        var parts = key.Split('/');
        return parts.Length == 2 && parts[1] == ManifestJson.FileName ? parts[0] : null;
    }

    /// <summary>Every committed checkpoint with its manifest's facts, oldest iteration first.</summary>
    public async Task<IReadOnlyList<CatalogEntry>> ListAsync(CancellationToken ct = default)
    {
        var entries = new List<CatalogEntry>();
        foreach (var name in await ListNamesAsync(ct).ConfigureAwait(false))
        {
            var m = await NativeCheckpointReader.ReadManifestAsync(Store, name, ct).ConfigureAwait(false);
            entries.Add(new CatalogEntry(name, m.Iteration, m.TotalBytes, m.CreatedUtc, m.Tensors.Count));
        }
        return entries.OrderBy(e => e.Iteration ?? long.MaxValue).ThenBy(e => e.CreatedUtc).ThenBy(e => e.Name, StringComparer.Ordinal).ToList();
    }

    public Task<int> DeleteAsync(string name, CancellationToken ct = default) => Store.DeleteFolderAsync(CheckpointName.Validate(name), ct);
}
