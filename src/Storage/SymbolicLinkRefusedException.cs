namespace Checkpointing.Storage;

/// <summary>
/// A path inside a save folder is a symbolic link. Checkpoint folders and shards are never read,
/// written or deleted through a link: that could touch files outside the save folder.
/// </summary>
public sealed class SymbolicLinkRefusedException(string path)
    : IOException($"{path} is a symbolic link; checkpoint folders and shards are never read, written or deleted through a link.")
{
    /// <summary>The path that is a symbolic link.</summary>
    public string LinkPath { get; } = path;
}
