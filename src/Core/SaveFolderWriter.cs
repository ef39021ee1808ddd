using Checkpointing.Storage;

namespace Checkpointing.Core;

/// <summary>
/// This process's hold on a save folder while it writes there: the folder's exclusive <c>flock</c>, taken by the first write
/// of the process and released by the last one in flight. Another process that writes meanwhile fails at once with
/// <see cref="SaveFolderBusyException"/> before writing anything; a writer that dies loses its lock with its descriptor,
/// so a crash never leaves the folder locked. Writes of one process (an async save beside a retention deletion) share the
/// hold and coordinate through their shard pins.
/// </summary>
internal sealed class SaveFolderWriter : IDisposable
{
    private sealed class Hold(DirectoryHandle handle, bool locked)
    {
        public DirectoryHandle Handle { get; } = handle;

        /// <summary>False on a file system without locks: then other processes may be writing too.</summary>
        public bool Locked { get; } = locked;

        public int Writers { get; set; }
    }

    private static readonly Dictionary<string, Hold> Holds = new(StringComparer.Ordinal);

    private readonly string _folder;
    private bool _released;

    private SaveFolderWriter(string folder, bool alone)
    {
        _folder = folder;
        Alone = alone;
    }

    /// <summary>No other write, of this process or another, was in flight in the folder when this one began: leftovers of killed writes may be collected.</summary>
    public bool Alone { get; }

    /// <exception cref="SaveFolderBusyException">another process holds the folder</exception>
    public static SaveFolderWriter Acquire(string folder)
    {
        lock (Holds)
        {
            if (!Holds.TryGetValue(folder, out var hold))
            {
                var handle = DirectoryHandle.Open(folder);
                var outcome = handle.TryLockExclusive();
                if (outcome == FolderLock.HeldElsewhere)
                {
                    handle.Dispose();
                    throw new SaveFolderBusyException(folder);
                }
                Holds[folder] = hold = new Hold(handle, outcome == FolderLock.Taken);
            }
            hold.Writers++;
            return new SaveFolderWriter(folder, alone: hold.Locked && hold.Writers == 1);
        }
    }

    public void Dispose()
    {
        lock (Holds)
        {
            if (_released) return;
            _released = true;
            var hold = Holds[_folder];
            if (--hold.Writers > 0) return;
            Holds.Remove(_folder);
            hold.Handle.Dispose(); // closing the descriptor drops the lock
        }
    }
}
