namespace Checkpointing.Cli;

/// <summary>A column of a <see cref="CliTable"/>: its header, and its width and alignment as plain text.</summary>
public sealed record CliColumn(string Header, int Width, bool Right = false);
