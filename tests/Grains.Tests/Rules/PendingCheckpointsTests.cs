using Checkpointing.Abstractions;
using Checkpointing.Contracts;

namespace Checkpointing.Grains.Tests.Rules;

/// <summary>Step 1 of the commit protocol, Begin, and what a report must match, without a cluster.</summary>
public sealed class PendingCheckpointsTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 7, 0, 0, 0, TimeSpan.Zero);
    private static readonly TensorListSummary Tensors = TensorListSummary.Of([new TensorSize("w", 64)]);

    private static BeginCheckpointRequest Begin(int rank, long epoch = 1, int world = 2, TensorListSummary? tensors = null) =>
        new("model_0000009", 9, world, rank, epoch, tensors ?? Tensors);

    [Fact]
    public void Every_rank_of_an_attempt_gets_the_same_attempt_and_only_the_first_begin_needs_a_write()
    {
        var state = new RunState { Epoch = 1 };
        var pending = new PendingCheckpoints(RunSample.Id);

        var first = pending.Begin(state, Begin(0), Now, out var firstIsNew, out _);
        state.Pending[first.Name] = first;
        var second = pending.Begin(state, Begin(1), Now, out var secondIsNew, out _);

        Assert.True(firstIsNew);
        Assert.False(secondIsNew);
        Assert.Same(first, second);
        var attempt = pending.AttemptFor(second, 1);
        Assert.Equal(StoreLayout.ShardName(1, 2, first.AttemptId), attempt.ShardPath);
        Assert.Equal(RunSample.Folder("model_0000009"), attempt.CheckpointPrefix);
    }

    [Fact]
    public void A_rank_with_another_world_size_or_tensor_list_is_refused_and_a_newer_attempt_supersedes()
    {
        var state = new RunState { Epoch = 1 };
        var pending = new PendingCheckpoints(RunSample.Id);
        var first = pending.Begin(state, Begin(0), Now, out _, out _);
        state.Pending[first.Name] = first;

        Assert.Contains("world size", Assert.Throws<RunRefusedException>(() => pending.Begin(state, Begin(1, world: 4), Now, out _, out _)).Message);
        Assert.Contains("same tensor list", Assert.Throws<RunRefusedException>(() =>
            pending.Begin(state, Begin(1, tensors: TensorListSummary.Of([new TensorSize("w", 65)])), Now, out _, out _)).Message);

        var newer = pending.Begin(state, Begin(0, epoch: 2), Now, out var isNew, out var superseded);
        Assert.True(isNew);
        Assert.Same(first, superseded);
        Assert.NotEqual(first.AttemptId, newer.AttemptId);
    }

    [Fact]
    public void A_report_of_a_shard_the_plan_did_not_name_is_refused()
    {
        var state = new RunState { Epoch = 1 };
        var pending = new PendingCheckpoints(RunSample.Id).Begin(state, Begin(0), Now, out _, out _);
        var report = new ShardReport(pending.Name, pending.AttemptId, 1, 1, new ShardInfo("shard-00001-of-00002-00000000.safetensors", 64, "crc64:0"),
            new Dictionary<string, TensorInfo> { ["w"] = new(1, "F32", [16], [0, 64]) }, null);

        Assert.Contains("the plan says", Assert.Throws<RunRefusedException>(() => ReportChecks.Check(pending, report)).Message);
        Assert.Null(ReportChecks.Check(pending, report with { Shard = report.Shard with { Path = StoreLayout.ShardName(1, 2, pending.AttemptId) } }));
    }
}
