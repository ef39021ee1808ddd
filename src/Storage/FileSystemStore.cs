using System.Runtime.CompilerServices;
using Checkpointing.Abstractions;

namespace Checkpointing.Storage;

/// <summary>
/// A store over a local folder (the embedded default). Writes go to a hidden temporary file in
/// the target folder, are flushed to disk, then renamed over the target: a crash at any point
/// leaves either the old object or the new one, and temporary files are never listed.
/// </summary>
public sealed class FileSystemStore : ICheckpointStore
{
    internal const string TempMarker = ".tmp-";
    private const int BufferSize = 1 << 20;
    private readonly string _root;

    public FileSystemStore(string root)
    {
        _root = Path.GetFullPath(root);
        Directory.CreateDirectory(_root);
    }

    public string Root => _root;
    public string Description => $"folder {_root}";

    /// <summary>The file behind a key; keys are validated, so the path never leaves the root.</summary>
    public string PathOf(string key) => Path.Combine(_root, StoreKey.Validate(key).Replace('/', Path.DirectorySeparatorChar));

    public async Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default)
    {
        var target = PathOf(key);
        var folder = Path.GetDirectoryName(target)!;
        var createdFolder = !Directory.Exists(folder);
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".{Path.GetFileName(target)}{TempMarker}{Guid.NewGuid():N}");
        try
        {
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize, FileOptions.None))
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
            if (createdFolder) TryDeleteEmptyFolder(folder);
            throw;
        }
    }

    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default)
    {
        var path = PathOf(key);
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

    public async Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        try
        {
            using var handle = File.OpenHandle(PathOf(key), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
            var done = 0;
            while (done < destination.Length)
            {
                var n = await RandomAccess.ReadAsync(handle, destination[done..], offset + done, cancellationToken).ConfigureAwait(false);
                if (n == 0) throw new EndOfStreamException($"'{key}' in {Description} ends before offset {offset + destination.Length}.");
                done += n;
            }
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new StoreObjectNotFoundException(key, Description);
        }
    }

    public Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default)
    {
        var info = new FileInfo(PathOf(key));
        return Task.FromResult(info.Exists ? new StoreEntry(key, info.Length, info.LastWriteTimeUtc) : null);
    }

    public async IAsyncEnumerable<StoreEntry> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // The prefix may end inside a name ("model_00"), so enumerate from its folder and filter.
        var slash = prefix.LastIndexOf('/');
        var folderKey = slash < 0 ? "" : prefix[..slash];
        var folder = folderKey.Length == 0 ? _root : PathOf(folderKey);
        if (!Directory.Exists(folder)) yield break;
        var entries = new List<StoreEntry>();
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
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

    public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        var path = PathOf(key);
        if (!File.Exists(path)) return Task.FromResult(false);
        File.Delete(path);
        RemoveEmptyFolders(Path.GetDirectoryName(path)!);
        return Task.FromResult(true);
    }

    /// <summary>Hidden names (temporary files of writes in flight or crashed) are not objects.</summary>
    private static bool IsVisible(string key) => key.Split('/').All(segment => !segment.StartsWith('.'));

    private void RemoveEmptyFolders(string folder)
    {
        while (folder.Length > _root.Length && folder.StartsWith(_root, StringComparison.Ordinal))
        {
            try
            {
                if (Directory.EnumerateFileSystemEntries(folder).Any()) return;
                Directory.Delete(folder);
            }
            catch (IOException)
            {
                return; // another writer put something there meanwhile
            }
            folder = Path.GetDirectoryName(folder)!;
        }
    }

    /// <summary>Removes a folder this write created, unless something else is in it by now.</summary>
    private static void TryDeleteEmptyFolder(string folder)
    {
        try { Directory.Delete(folder, recursive: false); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
