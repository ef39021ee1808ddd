namespace Checkpointing.Contracts;

/// <summary>Which tensors this rank writes and where: the shard's key in the store. Computed by the rank itself.</summary>
public sealed record SavePlan(
    string Name,
    string AttemptId,
    int Rank,
    int WorldSize,
    string CheckpointPrefix,
    string ShardPath,
    IReadOnlyList<string> TensorKeys)
{
    /// <summary>The store key this rank's shard is written to: <see cref="ShardPath"/> in the checkpoint's folder <see cref="CheckpointPrefix"/>.</summary>
    public string ShardKey => StoreLayout.FileKey(CheckpointPrefix, ShardPath);

    /// <summary>This rank's share of <paramref name="tensors"/>: the split every rank and the grain compute alike (<see cref="ShardPlanner"/>).</summary>
    public static SavePlan For(CheckpointAttempt attempt, IReadOnlyList<TensorSize> tensors) => new(
        attempt.Name, attempt.AttemptId, attempt.Rank, attempt.WorldSize, attempt.CheckpointPrefix, attempt.ShardPath,
        ShardPlanner.Split(tensors, attempt.WorldSize, t => t.Key, t => t.Bytes)[attempt.Rank].Select(t => t.Key).ToList());
}
