namespace Checkpointing.Storage;

/// <summary>
/// How an <see cref="AzureBlobStore"/> moves bytes: block size and blocks in flight for writes, range size and ranges in
/// flight for reads, and the per-request checksum. They bound the memory each write and each sequential read holds.
/// </summary>
public sealed record AzureBlobStoreOptions
{
    // Defaults from BlobThroughputTests (256 MiB against Azurite, A/B with the raw SDK): every block
    // setting from 4 to 16 MiB × 4 to 8 in flight writes at the SDK's speed (ratio 0.9-1.1, noise), so
    // writes keep the smallest memory; reads of 16 MiB ranges beat 8 MiB by ~15% and 4 MiB by 2x.

    /// <summary>Bytes per staged block.</summary>
    public int BlockSize { get; init; } = 8 << 20;

    /// <summary>Blocks being uploaded at once; memory in flight is at most this × <see cref="BlockSize"/>.</summary>
    public int MaxBlocksInFlight { get; init; } = 4;

    /// <summary>Bytes per range download of a sequential read.</summary>
    public int ReadRangeSize { get; init; } = 16 << 20;

    /// <summary>Range downloads in flight ahead of a sequential reader; memory is at most this × <see cref="ReadRangeSize"/>.</summary>
    public int MaxRangesInFlight { get; init; } = 4;

    /// <summary>
    /// The per-request checksum every staged block and Put Blob carries, which the service verifies
    /// against the bytes it received. <see cref="TransferChecksum.None"/> by default: a checkpoint's
    /// integrity is checked end to end by the shard's CRC-64, recorded in the manifest while streaming
    /// and verified on every load, which also catches what a per-request checksum cannot (a wrong
    /// buffer handed to the stream, corruption at rest); a per-request MD5 costs about 1.7 s of CPU
    /// per GiB on top. This setting wins over any transfer validation of the client's options.
    /// </summary>
    public TransferChecksum TransferChecksum { get; init; } = TransferChecksum.None;
}
