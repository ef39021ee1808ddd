using Checkpointing.Formats;
using Checkpointing.Storage;

namespace Checkpointing.Core;

/// <summary>Opens a native checkpoint given as a folder path or the path of its manifest.json.</summary>
public static class NativeCheckpointFiles
{
    /// <summary>The folder store of the checkpoint's parent folder and the checkpoint's key in it.</summary>
    /// <param name="path">A native checkpoint folder, or the path of its manifest.json.</param>
    /// <exception cref="CheckpointNotFoundException">there is no manifest.json in the folder (it does not exist, or its save never completed)</exception>
    /// <exception cref="ArgumentException"><paramref name="path"/> is a file-system root, which cannot be a checkpoint folder</exception>
    public static (FileSystemStore Store, string Key) Locate(string path)
    {
        var full = Path.GetFullPath(path);
        if (Path.GetFileName(full) == ManifestJson.FileName) full = Path.GetDirectoryName(full)!;
        full = full.TrimEnd(Path.DirectorySeparatorChar);
        var parent = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' is not a checkpoint folder.", nameof(path));
        if (!File.Exists(Path.Combine(full, ManifestJson.FileName)))
            throw new CheckpointNotFoundException(full, $"folder {parent}");
        return (new FileSystemStore(parent), Path.GetFileName(full));
    }
}
