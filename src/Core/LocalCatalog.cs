using Checkpointing.Abstractions;
using Checkpointing.Formats;
using Checkpointing.Storage;

namespace Checkpointing.Core;

/// <summary>
/// The checkpoints of one save folder: a checkpoint is a sub-folder with a manifest, and the
/// fvcore-compatible <c>last_checkpoint</c> file holds the tagged name. The tag is replaced atomically.
/// </summary>
public sealed class LocalCatalog(ICheckpointStore store)
{
    /// <summary>The tag file's key, as fvcore names it: its content is the name of the last checkpoint.</summary>
    public const string TagFile = "last_checkpoint";

    /// <summary>The store over the save folder, which holds the checkpoints and the <see cref="TagFile"/>.</summary>
    public ICheckpointStore Store { get; } = store;

    /// <summary>The tag file, as an error message names it.</summary>
    public string TagDescription => Store is FileSystemStore folder ? folder.PathOf(TagFile) : $"{TagFile} in {Store.Description}";

    /// <summary>
    /// The tagged name, or null when there is no tag file. A tag that exists but is empty, unreadable,
    /// not a valid name, or names a checkpoint that is not there is an error: resuming from scratch
    /// would overwrite the checkpoints the tag was meant to point at.
    /// </summary>
    /// <exception cref="CheckpointFormatException">the tag file is damaged or dangling; the message names it</exception>
    public async Task<string?> GetLastAsync(CancellationToken ct = default)
    {
        string? text;
        try
        {
            text = await Store.ReadTextAsync(TagFile, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointFormatException(TagDescription, "tag", $"it cannot be read ({e.Message})", e);
        }
        if (text is null) return null;
        var name = text.Trim();
        if (name.Length == 0)
            throw new CheckpointFormatException(TagDescription, "tag", "the file is empty; it must name the last checkpoint. Restore it, or delete it to start from scratch");
        if (!CheckpointName.IsValid(name))
            throw new CheckpointFormatException(TagDescription, "tag", $"'{Shorten(name)}' is not a checkpoint name");
        if (await Store.GetEntryAsync(StoreLayout.ManifestKey(name), ct).ConfigureAwait(false) is null
            && await Store.GetEntryAsync(name, ct).ConfigureAwait(false) is null)
            throw new CheckpointFormatException(TagDescription, "tag", $"it names checkpoint '{name}', which does not exist in {Store.Description}");
        return name;
    }

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "…";

    /// <summary>
    /// Replaces the tag with <paramref name="name"/>, atomically as every store write. Whether that checkpoint exists is not
    /// checked here; <see cref="GetLastAsync"/> refuses a tag that names a missing one.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> is not a valid checkpoint name</exception>
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
            entries.Add(CatalogEntry.Of(name, m));
        }
        return entries.OrderBy(e => e.Iteration ?? long.MaxValue).ThenBy(e => e.CreatedUtc).ThenBy(e => e.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>Deletes a checkpoint's manifest and shards; anything else in its folder stays.</summary>
    public Task<int> DeleteAsync(string name, CancellationToken ct = default) => CheckpointFiles.DeleteCheckpointAsync(Store, CheckpointName.Validate(name), ct);
}
