namespace Checkpointing.Formats;

/// <summary>No committed checkpoint (no manifest) exists at the location.</summary>
public sealed class CheckpointNotFoundException(string checkpoint, string store)
    : FileNotFoundException($"No checkpoint '{checkpoint}' in {store} (no {ManifestJson.FileName}).", checkpoint);
