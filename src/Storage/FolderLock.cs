namespace Checkpointing.Storage;

/// <summary>What an attempt at a folder's exclusive lock found.</summary>
public enum FolderLock
{
    /// <summary>This handle now holds the exclusive lock, until it unlocks, closes, or its process ends.</summary>
    Taken,

    /// <summary>Another open handle, in this process or another, holds a lock on the folder.</summary>
    HeldElsewhere,

    /// <summary>The file system takes no locks; nobody can hold one.</summary>
    NotSupported,
}
