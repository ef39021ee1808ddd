namespace Checkpointing.Core;

/// <summary>
/// Another process is writing into the save folder (saving, tagging, deleting or compacting a checkpoint). A save folder has
/// one writer at a time: two at once would delete each other's superseded shards. Nothing was written.
/// </summary>
public sealed class SaveFolderBusyException(string folder)
    : IOException($"Save folder {folder} is being written by another process (it holds the folder's lock); a save folder has one writer at a time. Nothing was written: wait for that writer to finish, or save into another folder.")
{
    /// <summary>The save folder another process is writing into.</summary>
    public string Folder { get; } = folder;
}
