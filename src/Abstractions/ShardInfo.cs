namespace Checkpointing.Abstractions;

/// <param name="Path">The shard's key relative to the checkpoint folder.</param>
/// <param name="Bytes">Exact file length.</param>
/// <param name="Checksum">"crc64:" and 16 hex digits: CRC-64/ECMA-182 (System.IO.Hashing.Crc64) of the whole file.</param>
/// <param name="Checkpoint">The earlier checkpoint of the same run whose folder holds the shard (an incremental
/// checkpoint reuses its bytes), or null for a shard in this checkpoint's own folder.</param>
public sealed record ShardInfo(string Path, long Bytes, string Checksum, string? Checkpoint = null);
