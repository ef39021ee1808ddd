namespace Checkpointing.TrainerAgent;

/// <summary>One object of a held snapshot: its bytes in fixed-size chunks (no single array limits its size) and the CRC-64 they had on arrival.</summary>
internal sealed class HeldObject(IReadOnlyList<byte[]> chunks, long length, ulong crc64)
{
    public IReadOnlyList<byte[]> Chunks => chunks;
    public long Length => length;
    public ulong Crc64 => crc64;

    /// <summary>Writes the bytes to <paramref name="destination"/>, chunk by chunk.</summary>
    public async Task CopyToAsync(Stream destination, CancellationToken cancellationToken)
    {
        var left = length;
        foreach (var chunk in chunks)
        {
            var count = (int)Math.Min(chunk.Length, left);
            await destination.WriteAsync(chunk.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
            left -= count;
        }
    }
}
