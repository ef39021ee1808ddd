
namespace Checkpointing.Cli;

/// <summary>A checkpoint folder that has a manifest but cannot be loaded, and why.</summary>
public sealed record DamagedCheckpoint(string Name, string Problem);
