using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>Evicts files from the page cache (posix_fadvise DONTNEED on clean pages), so the next read comes from the disk.</summary>
public static partial class PageCache
{
    private const int DontNeed = 4; // POSIX_FADV_DONTNEED

    public static void Evict(string path)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
        // Only clean pages are dropped: flush first (our files are already durable; this makes the eviction certain).
        _ = FSync(handle);
        var error = FAdvise(handle, 0, 0, DontNeed);
        if (error != 0) throw new IOException($"posix_fadvise({path}) failed with error {error}");
    }

    public static void EvictFolder(string folder)
    {
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)) Evict(file);
    }

    /// <summary>Reads every file once, so the next read is served from the page cache.</summary>
    public static void Warm(string folder)
    {
        var buffer = new byte[8 << 20];
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            using var stream = File.OpenRead(file);
            while (stream.Read(buffer) > 0) { }
        }
    }

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int FAdvise(SafeFileHandle fd, long offset, long length, int advice);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FSync(SafeFileHandle fd);
}
