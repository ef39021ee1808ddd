using System.Runtime.CompilerServices;
using Checkpointing.Abstractions;
using Microsoft.Win32.SafeHandles;

namespace Checkpointing.Storage;

/// <summary>
/// A store over a local folder (the embedded default). Writes go to a hidden temporary file in
/// the target folder, are flushed to disk, renamed over the target, then the folder is flushed:
/// a crash at any point leaves either the old object or the new one, and temporary files are never
/// listed. The store never follows a symbolic link below its root: a key whose path crosses one is
/// refused with <see cref="SymbolicLinkRefusedException"/>, and listing skips links.
/// </summary>
public sealed class FileSystemStore : ICheckpointStore
{
    internal const string TempMarker = ".tmp-";
    private const int BufferSize = 1 << 20;
    private static readonly EnumerationOptions NoLinks = new()
    {
        RecurseSubdirectories = true,
        AttributesToSkip = FileAttributes.ReparsePoint,
        MatchType = MatchType.Simple,
    };
    private readonly string _root;

    /// <summary>A store over the folder <paramref name="root"/>, created (with its parents) if it does not exist.</summary>
    public FileSystemStore(string root)
    {
        _root = Path.GetFullPath(root);
        Directory.CreateDirectory(_root);
    }

    /// <summary>The folder, as a full path.</summary>
    public string Root => _root;

    /// <summary>"folder " and <see cref="Root"/>, for logs and errors.</summary>
    public string Description => $"folder {_root}";

    /// <summary>The file behind a key; keys are validated, so the path never leaves the root.</summary>
    public string PathOf(string key) => Path.Combine(_root, StoreKey.Validate(key).Replace('/', Path.DirectorySeparatorChar));

    /// <summary><see cref="PathOf"/>, refusing a key whose path goes through a symbolic link below the root.</summary>
    private string LinkFreePathOf(string key)
    {
        var path = PathOf(key);
        var at = _root.Length;
        while (at < path.Length)
        {
            var next = path.IndexOf(Path.DirectorySeparatorChar, at + 1);
            var prefix = next < 0 ? path : path[..next];
            if (new FileInfo(prefix).LinkTarget is not null) throw new SymbolicLinkRefusedException(prefix);
            if (next < 0) break;
            at = next;
        }
        return path;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The callback writes a hidden temporary file next to the target; it is fsynced, renamed over the target, and the folder is
    /// fsynced. Folders the key needs are created, and removed again when the write fails and leaves them empty.
    /// </remarks>
    /// <exception cref="SymbolicLinkRefusedException">the key's path goes through a symbolic link below the root</exception>
    public async Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default)
    {
        var target = LinkFreePathOf(key);
        var folder = Path.GetDirectoryName(target)!;
        var created = CreateFolders(folder);
        var temp = TemporaryPathOf(target);
        try
        {
            FileStream OpenTemporary() => new(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize, FileOptions.None);
            FileStream opened;
            try
            {
                opened = OpenTemporary();
            }
            catch (DirectoryNotFoundException)
            {
                // A failed write into the same new folder removed it, empty, between our creating and opening: once more.
                created = CreateFolders(folder);
                opened = OpenTemporary();
            }
            await using (var stream = opened)
            {
                await writeContent(stream, cancellationToken).ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            // The folders this write created, and the key's own folder in any case, if they are empty now: writes into one new
            // folder (the shards of a checkpoint) run at once, and the one that created it may have failed first, while
            // another still had a file there.
            RemoveEmptyFolders(folder, levels: Math.Max(created.Count, 1));
            throw;
        }
        // The object is in place: a failure from here on must not undo it (the caller may see the error, but the write happened).
        // The rename and any folder this write created are durable only once their parents are flushed.
        DirectoryHandle.Flush(folder);
        foreach (var parent in created) DirectoryHandle.Flush(parent);
    }

    /// <inheritdoc/>
    /// <exception cref="SymbolicLinkRefusedException">the key's path goes through a symbolic link below the root</exception>
    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default)
    {
        var path = LinkFreePathOf(key);
        try
        {
            Stream stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, BufferSize, FileOptions.SequentialScan);
            return Task.FromResult(stream);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new StoreObjectNotFoundException(key, Description);
        }
    }

    /// <inheritdoc/>
    /// <remarks>Throws <see cref="StoreObjectNotFoundException"/> when the file is absent and <see cref="EndOfStreamException"/> when it ends before the range does.</remarks>
    /// <exception cref="SymbolicLinkRefusedException">the key's path goes through a symbolic link below the root</exception>
    public async Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        using var handle = OpenForRanges(key);
        for (var done = 0; done < destination.Length;)
        {
            var n = await RandomAccess.ReadAsync(handle, destination[done..], offset + done, cancellationToken).ConfigureAwait(false);
            if (n == 0) throw EndsBefore(key, offset + destination.Length);
            done += n;
        }
    }

    /// <summary>One open handle and positional reads (a resharded load reads thousands of small ranges: opening per range dominated).</summary>
    public Task ReadRangesAsync(string key, IReadOnlyList<(long Offset, Memory<byte> Destination)> ranges, CancellationToken cancellationToken = default)
    {
        using var handle = OpenForRanges(key);
        foreach (var (offset, destination) in ranges)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(offset);
            cancellationToken.ThrowIfCancellationRequested();
            for (var done = 0; done < destination.Length;)
            {
                var n = RandomAccess.Read(handle, destination.Span[done..], offset + done);
                if (n == 0) throw EndsBefore(key, offset + destination.Length);
                done += n;
            }
        }
        return Task.CompletedTask;
    }

    private SafeFileHandle OpenForRanges(string key)
    {
        try
        {
            return File.OpenHandle(LinkFreePathOf(key), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new StoreObjectNotFoundException(key, Description);
        }
    }

    private EndOfStreamException EndsBefore(string key, long end) => new($"'{key}' in {Description} ends before offset {end}.");

    /// <inheritdoc/>
    /// <remarks>The entry's time is the file's last write time, in UTC.</remarks>
    /// <exception cref="SymbolicLinkRefusedException">the key's path goes through a symbolic link below the root</exception>
    public Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default)
    {
        var info = new FileInfo(LinkFreePathOf(key));
        return Task.FromResult(info.Exists ? new StoreEntry(key, info.Length, info.LastWriteTimeUtc) : null);
    }

    /// <inheritdoc/>
    /// <remarks>Hidden files (temporary files of writes in flight or killed) and symbolic links are not listed.</remarks>
    public async IAsyncEnumerable<StoreEntry> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // The prefix may end inside a name ("model_00"), so enumerate from its folder and filter.
        var slash = prefix.LastIndexOf('/');
        var folderKey = slash < 0 ? "" : prefix[..slash];
        var folder = folderKey.Length == 0 ? _root : LinkFreePathOf(folderKey);
        if (!Directory.Exists(folder)) yield break;
        var entries = new List<StoreEntry>();
        foreach (var file in Directory.EnumerateFiles(folder, "*", NoLinks))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var key = Path.GetRelativePath(_root, file).Replace(Path.DirectorySeparatorChar, '/');
            if (!key.StartsWith(prefix, StringComparison.Ordinal) || !IsVisible(key)) continue;
            var info = new FileInfo(file);
            if (info.Exists) entries.Add(new StoreEntry(key, info.Length, info.LastWriteTimeUtc));
        }
        entries.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        foreach (var entry in entries)
        {
            yield return entry;
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc/>
    /// <remarks>Folders below the root that the deletion leaves empty are removed too.</remarks>
    /// <exception cref="SymbolicLinkRefusedException">the key's path goes through a symbolic link below the root</exception>
    public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        var path = LinkFreePathOf(key);
        if (!File.Exists(path)) return Task.FromResult(false);
        File.Delete(path);
        RemoveEmptyFolders(Path.GetDirectoryName(path)!, levels: int.MaxValue);
        return Task.FromResult(true);
    }

    /// <summary>
    /// Deletes the hidden temporary files that writes into <paramref name="folderKey"/> ("" for the
    /// root) left when their process was killed. Only call it when no write into the folder can be in
    /// flight (see <see cref="DirectoryHandle.TryLockExclusive"/>). <paramref name="ofTarget"/> selects by
    /// the name each temporary file was going to become; files modified less than <paramref name="minimumAge"/>
    /// ago are kept (a writer that takes no lock may still be writing them). Returns the names deleted.
    /// </summary>
    public IReadOnlyList<string> DeleteTemporaryFiles(string folderKey, Func<string, bool> ofTarget, TimeSpan minimumAge)
    {
        var folder = folderKey.Length == 0 ? _root : LinkFreePathOf(folderKey);
        if (!Directory.Exists(folder)) return [];
        var deleted = new List<string>();
        foreach (var file in Directory.EnumerateFiles(folder, ".*", new EnumerationOptions { AttributesToSkip = FileAttributes.ReparsePoint }))
        {
            var name = Path.GetFileName(file);
            if (TargetOfTemporary(name) is not { } target || !ofTarget(target) || DateTime.UtcNow - File.GetLastWriteTimeUtc(file) < minimumAge) continue;
            File.Delete(file);
            deleted.Add(name);
        }
        return deleted;
    }

    /// <summary>Removes the folder of <paramref name="folderKey"/> when it holds nothing at all (hidden files included).</summary>
    public bool DeleteFolderIfEmpty(string folderKey) => RemoveEmptyFolders(LinkFreePathOf(folderKey), levels: 1) > 0;

    /// <summary>The name a temporary file of this store was going to become (".{target}.tmp-{32 hex digits}"), or null for any other name.</summary>
    public static string? TargetOfTemporary(string fileName)
    {
        var marker = fileName.LastIndexOf(TempMarker, StringComparison.Ordinal);
        if (!fileName.StartsWith('.') || marker < 2) return null;
        var id = fileName.AsSpan(marker + TempMarker.Length);
        var target = fileName[1..marker];
        return id.Length == 32 && !id.ContainsAnyExcept("0123456789abcdef") && CheckpointName.IsValid(target) ? target : null;
    }

    private static string TemporaryPathOf(string target) =>
        Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}{TempMarker}{Guid.NewGuid():N}");

    /// <summary>Creates <paramref name="folder"/> and its missing parents; returns the parents of what it created, innermost first.</summary>
    private List<string> CreateFolders(string folder)
    {
        var parents = new List<string>();
        for (var f = folder; f.Length > _root.Length && !Directory.Exists(f); f = Path.GetDirectoryName(f)!) parents.Add(Path.GetDirectoryName(f)!);
        Directory.CreateDirectory(folder);
        return parents;
    }

    /// <summary>Hidden names (temporary files of writes in flight or crashed) are not objects.</summary>
    private static bool IsVisible(string key) => key.Split('/').All(segment => !segment.StartsWith('.'));

    /// <summary>Removes <paramref name="folder"/> and up to <paramref name="levels"/> - 1 of its parents below the root while each is empty; returns how many it removed.</summary>
    private int RemoveEmptyFolders(string folder, int levels)
    {
        var removed = 0;
        for (; removed < levels && folder.Length > _root.Length && folder.StartsWith(_root, StringComparison.Ordinal); removed++)
        {
            try
            {
                if (!Directory.Exists(folder) || Directory.EnumerateFileSystemEntries(folder).Any()) break;
                Directory.Delete(folder);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                break; // another writer put something there meanwhile, or the folder is not ours to remove
            }
            folder = Path.GetDirectoryName(folder)!;
        }
        return removed;
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
