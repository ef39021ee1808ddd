using System.Runtime.InteropServices;

namespace Checkpointing.Storage.Tests;

/// <summary>
/// A second descriptor for a folder this process has open, sharing its open file description: what a child process holds
/// between fork and exec while the parent starts it (O_CLOEXEC closes it only at exec). A <c>flock</c> belongs to the open
/// file description, so while this copy lives, closing the parent's descriptor alone does not release the lock.
/// </summary>
internal sealed partial class InheritedDescriptor : IDisposable
{
    private int _fd;

    private InheritedDescriptor(int fd) => _fd = fd;

    /// <summary>Duplicates the one descriptor of this process that is open on <paramref name="folder"/>.</summary>
    public static InheritedDescriptor Of(string folder)
    {
        var open = Directory.GetFileSystemEntries("/proc/self/fd")
            .Where(link => new FileInfo(link).LinkTarget == folder)
            .Select(link => int.Parse(Path.GetFileName(link), System.Globalization.CultureInfo.InvariantCulture))
            .ToList();
        Assert.True(open.Count == 1, $"expected one descriptor open on {folder}, found {open.Count}");
        var copy = NativeDup(open[0]);
        Assert.True(copy >= 0, $"dup failed: errno {Marshal.GetLastPInvokeError()}");
        return new InheritedDescriptor(copy);
    }

    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) NativeClose(fd);
    }

    [LibraryImport("libc", EntryPoint = "dup", SetLastError = true)]
    private static partial int NativeDup(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int NativeClose(int fd);
}
