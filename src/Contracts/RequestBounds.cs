namespace Checkpointing.Contracts;

/// <summary>
/// The largest values a caller may send in a control-plane request. They are checked at the edge (the HTTP API, the CLI)
/// and again in the grain, so that no request, however it arrives, makes a silo hold or do work out of proportion: a
/// reason is stored in the run's state and returned with every directive, and a world size decides how many shards an
/// abort deletes.
/// </summary>
public static class RequestBounds
{
    /// <summary>Characters of a checkpoint-now reason.</summary>
    public const int MaxReasonLength = 256;

    /// <summary>Ranks of one checkpoint.</summary>
    public const int MaxWorldSize = 8192;

    /// <summary>Tensors one rank reports for its shard, counting each chunk of a sharded tensor.</summary>
    public const int MaxTensorsPerShard = 1_000_000;

    /// <summary>Shards of earlier checkpoints one rank's shard report may reuse.</summary>
    public const int MaxReusedShards = 65_536;

    /// <summary>Characters of the non-tensor state rank 0 reports (the manifest's own limit is larger: it holds the tensor index too).</summary>
    public const int MaxStateJsonLength = 16 << 20;

    /// <exception cref="ArgumentException">the reason is too long</exception>
    public static string Reason(string? reason)
    {
        if (reason is { Length: > MaxReasonLength }) throw new ArgumentException($"A checkpoint-now reason has at most {MaxReasonLength} characters, not {reason.Length}.", nameof(reason));
        return reason ?? "";
    }

    /// <exception cref="RunRefusedException">the world size is not in 1..<see cref="MaxWorldSize"/> or the rank not in it</exception>
    public static void RankInWorld(int rank, int worldSize)
    {
        if (worldSize is < 1 or > MaxWorldSize) throw new RunRefusedException($"A world has 1 to {MaxWorldSize} ranks, not {worldSize}.");
        if (rank < 0 || rank >= worldSize) throw new RunRefusedException($"Rank {rank} is not in a world of size {worldSize}.");
    }

    /// <exception cref="RunRefusedException">the report holds more tensors, reused shards or state than a shard may</exception>
    public static void ShardReport(ShardReport report)
    {
        var tensors = report.Tensors.Count + (report.Sharded?.Values.Sum(s => (long)s.Chunks.Count) ?? 0);
        if (tensors > MaxTensorsPerShard) throw new RunRefusedException($"A shard holds at most {MaxTensorsPerShard} tensors and chunks, not {tensors}.");
        if (report.Reused?.Count > MaxReusedShards) throw new RunRefusedException($"A shard report reuses at most {MaxReusedShards} shards, not {report.Reused.Count}.");
        var stateJson = report.StateJson;
        if (stateJson is { Length: > MaxStateJsonLength }) throw new RunRefusedException($"The non-tensor state has at most {MaxStateJsonLength} characters, not {stateJson.Length}.");
    }
}
