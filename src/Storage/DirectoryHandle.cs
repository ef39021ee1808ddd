using System.ComponentModel;
using System.Runtime.InteropServices;

namespace Checkpointing.Storage;

/// <summary>
/// An open directory (POSIX <c>open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)</c>), for what .NET cannot do with a folder:
/// fsync it so that a rename inside it is durable, and take an advisory <c>flock</c> on it that the
/// kernel releases when the process dies. .NET refuses to open directories as files, hence libc.
/// On systems other than Linux and macOS the handle does nothing and every lock attempt fails.
/// </summary>
public sealed partial class DirectoryHandle : IDisposable
{
    // O_RDONLY | O_DIRECTORY | O_CLOEXEC: a child process started meanwhile must not inherit the descriptor (and its lock).
    private static readonly int OpenFlags = OperatingSystem.IsMacOS() ? 0x100000 | 0x1000000 : 0x10000 | 0x80000;
    private const int LockEx = 2;
    private const int LockNb = 4;
    private const int LockUn = 8;
    private const int EIntr = 4;
    private static readonly int EWouldBlock = OperatingSystem.IsMacOS() ? 35 : 11;
    private const int EBadF = 9;
    private const int EInval = 22;
    private static readonly int[] NoDirectoryFsync = OperatingSystem.IsMacOS() ? [EBadF, EInval, 45, 102] : [EBadF, EInval, 95];

    private static readonly bool Supported = OperatingSystem.IsLinux() || OperatingSystem.IsMacOS();
    private int _fd;

    private DirectoryHandle(string path, int fd)
    {
        Path = path;
        _fd = fd;
    }

    /// <summary>The folder's path, as given to <see cref="Open"/>.</summary>
    public string Path { get; }

    /// <summary>Opens the folder <paramref name="path"/>; on systems other than Linux and macOS, a handle that does nothing.</summary>
    /// <exception cref="IOException">the folder cannot be opened (missing, not a folder, no permission); the errno is in <see cref="Exception.HResult"/></exception>
    public static DirectoryHandle Open(string path)
    {
        if (!Supported) return new DirectoryHandle(path, -1);
        var fd = NativeOpen(path, OpenFlags);
        if (fd < 0) throw Failure("open", path);
        return new DirectoryHandle(path, fd);
    }

    /// <summary>Makes the folder's entries (names created, renamed or removed in it) durable.</summary>
    public static void Flush(string path)
    {
        using var handle = Open(path);
        handle.Flush();
    }

    /// <remarks>File systems that cannot fsync a folder (EINVAL, EBADF, ENOTSUP/EOPNOTSUPP) are not an error, as in PostgreSQL.</remarks>
    public void Flush()
    {
        if (_fd < 0) return;
        if (NativeFsync(_fd) != 0 && !NoDirectoryFsync.Contains(Marshal.GetLastPInvokeError())) throw Failure("fsync", Path);
    }

    /// <summary>
    /// Takes the exclusive lock if no other open handle holds any lock on this folder, without waiting. Where the file
    /// system has no locks (some network mounts, systems other than Linux and macOS), <see cref="FolderLock.NotSupported"/>.
    /// </summary>
    public FolderLock TryLockExclusive()
    {
        if (_fd < 0) return FolderLock.NotSupported;
        while (true)
        {
            if (NativeFlock(_fd, LockEx | LockNb) == 0) return FolderLock.Taken;
            var errno = Marshal.GetLastPInvokeError();
            if (errno == EIntr) continue;
            return errno == EWouldBlock ? FolderLock.HeldElsewhere : FolderLock.NotSupported;
        }
    }

    /// <summary>Releases the lock this handle holds, if any. Closing the handle releases it too, as does the end of the process.</summary>
    public void Unlock()
    {
        if (_fd >= 0) NativeFlock(_fd, LockUn);
    }

    /// <summary>Releases any lock the handle holds and closes the descriptor. Calling it again does nothing.</summary>
    /// <remarks>
    /// Unlocks explicitly rather than relying on the close: the lock belongs to the open file description, which a child
    /// process this process is starting shares until its exec (O_CLOEXEC acts only then), so a close alone could leave the
    /// folder locked for that moment and the next writer of this very process would find it "held elsewhere".
    /// </remarks>
    public void Dispose()
    {
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd < 0) return;
        NativeFlock(fd, LockUn);
        NativeClose(fd);
    }

    /// <summary>The errno goes into HResult, as .NET does for its own failed file system calls on Unix.</summary>
    private static IOException Failure(string call, string path)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new($"{call} of folder {path} failed: {new Win32Exception(errno).Message}", errno);
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int NativeOpen(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int NativeFsync(int fd);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int NativeFlock(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int NativeClose(int fd);
}
