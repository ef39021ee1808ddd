namespace Checkpointing.Formats;

/// <summary>
/// A checkpoint file is damaged or not what it claims to be. <see cref="Source"/> names the file
/// (shard or manifest) and <see cref="Check"/> the check that failed, so that an operator can see
/// at once which object to restore.
/// </summary>
public sealed class CheckpointFormatException(string source, string check, string detail, Exception? inner = null)
    : Exception($"{source}: {check} failed: {detail}", inner)
{
    public new string Source { get; } = source;
    public string Check { get; } = check;
}
