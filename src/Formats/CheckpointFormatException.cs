namespace Checkpointing.Formats;

/// <summary>
/// A checkpoint file is damaged or not what it claims to be. <see cref="Source"/> names the file
/// (shard or manifest) and <see cref="Check"/> the check that failed, so that an operator can see
/// at once which object to restore.
/// </summary>
public sealed class CheckpointFormatException(string source, string check, string detail, Exception? inner = null)
    : Exception($"{source}: {check} failed: {detail}", inner)
{
    /// <summary>
    /// The file that failed the check: the store key, file name or path of a shard, manifest or imported file. Hides <see cref="Exception.Source"/>,
    /// which would otherwise name the assembly that threw.
    /// </summary>
    public new string Source { get; } = source;

    /// <summary>The check that failed, in a few words, e.g. <c>header length</c>, <c>data offsets</c> or <c>checksum</c>.</summary>
    public string Check { get; } = check;
}
