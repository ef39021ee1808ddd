using Checkpointing.TrainerAgent;
using System.Text.Json.Nodes;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;

namespace Checkpointing.Grains.Tests;

/// <summary>Plays the ranks of a training job: real shards with real bytes, through the real protocol.</summary>
public sealed class FakeJob(IClusterClient client, ICheckpointStore store, RunId run, int worldSize, int tensors = 12)
{
    public RunId Run => run;
    public ITrainingRunGrain Grain => client.GetGrain<ITrainingRunGrain>(run.Key);
    public long Epoch { get; set; }

    /// <summary>Tensors of deterministic content: the same name at the same iteration has the same bytes on every rank.</summary>
    public List<NamedTensor> Tensors(long iteration) => Enumerable.Range(0, tensors).Select(i =>
    {
        var t = HostTensor.Allocate(TensorDType.F32, [16 * (i + 1)]);
        new Random((int)(iteration * 1000 + i)).NextBytes(t.Data);
        return new NamedTensor($"model/layer{i}.weight", t);
    }).ToList();

    public static string State(long iteration, IEnumerable<NamedTensor> tensors)
    {
        var model = new JsonObject();
        foreach (var t in tensors) model[t.Key["model/".Length..]] = new JsonObject { [StateTree.TensorMarker] = t.Key };
        return new JsonObject { ["model"] = model, ["iteration"] = iteration }.ToJsonString();
    }

    public List<TensorSize> Sizes(long iteration) => Tensors(iteration).Select(t => new TensorSize(t.Key, t.ByteLength)).ToList();

    /// <summary>Phase one for one rank: the attempt from the grain, the share computed by the rank itself.</summary>
    public async Task<SavePlan> Begin(string name, long iteration, int rank)
    {
        var sizes = Sizes(iteration);
        var attempt = await Grain.BeginCheckpoint(new BeginCheckpointRequest(name, iteration, worldSize, rank, Epoch, TensorListSummary.Of(sizes)));
        return SavePlan.For(attempt, sizes);
    }

    public async Task<ShardReport> WriteShard(SavePlan plan, long iteration)
    {
        var tensorList = Tensors(iteration);
        return await RankShardWriter.WriteAsync(store, plan, Epoch, tensorList, plan.Rank == 0 ? State(iteration, tensorList) : null);
    }

    /// <summary>Reports, then long-polls until the commit, reporting again when the grain asks for it.</summary>
    public async Task<CheckpointRecord> ReportAndAwait(ShardReport report)
    {
        var ack = await Grain.ReportShard(report);
        while (ack.Record is null)
        {
            var wait = await Grain.AwaitCommit(new CommitWaitRequest(report.Name, report.AttemptId, report.Rank, Epoch, TimeSpan.FromSeconds(5)));
            if (wait.Record is { } record) return record;
            if (wait.Status == CommitWaitStatus.ReportAgain) ack = await Grain.ReportShard(report);
        }
        return ack.Record;
    }

    /// <summary>All ranks begin, write, report and wait concurrently; returns the record each rank got.</summary>
    public async Task<CheckpointRecord[]> SaveAsync(string name, long iteration) =>
        await Task.WhenAll(Enumerable.Range(0, worldSize).Select(async rank =>
        {
            var plan = await Begin(name, iteration, rank);
            return await ReportAndAwait(await WriteShard(plan, iteration));
        }));
}
