using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>A committed checkpoint of a run, by the name of its folder (which is what references use).</summary>
public sealed record EarlierCheckpoint(string Name, CheckpointManifest Manifest);
