using System.Collections.Concurrent;
using System.Diagnostics;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.TestSupport;
using Checkpointing.TrainerAgent;

namespace Checkpointing.Integration.Tests;

/// <summary>One cluster save is one trace: the agent's spans and the run grain's commit span in one tree, collected in memory.</summary>
[Collection(nameof(Cluster))]
public sealed class TracingTests(TwoSiloCluster fixture)
{
    [Fact]
    public async Task A_cluster_save_is_one_trace_from_the_agent_save_through_the_grain_call_to_the_commit()
    {
        var stopped = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == CheckpointTracing.SourceName || source.Name.StartsWith("Microsoft.Orleans", StringComparison.Ordinal),
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Add,
        };
        ActivitySource.AddActivityListener(listener);
        TestTenancy.ActAs("it");
        var run = await ClusterRanks.CreateRunAsync(fixture.Client, "traced", new PeriodicPolicy(1000));
        var epoch = await fixture.Client.GetGrain<ITrainingRunGrain>(run.Key).StartAttempt();
        var agent = await RunAgent.JoinAsync(fixture.Client, run, fixture.Store, 0, 1, epoch, ClusterRanks.Replica(seed: 2), []);

        await agent.Checkpointer.SaveAsync("traced_0");

        var save = Assert.Single(stopped, a => a.OperationName == CheckpointTracing.Save && (string?)a.GetTagItem(CheckpointTracing.NameTag) == "traced_0");
        var trace = stopped.Where(a => a.TraceId == save.TraceId).ToDictionary(a => a.SpanId);
        foreach (var step in new[] { CheckpointTracing.Begin, CheckpointTracing.WriteShard, CheckpointTracing.Report })
        {
            var span = Assert.Single(trace.Values, a => a.OperationName == step);
            Assert.Equal(save.SpanId, span.ParentSpanId);
            Assert.Equal(run.Key, span.GetTagItem(CheckpointTracing.RunTag));
        }
        // The grain's commit span, on a silo, hangs below the agent's report through Orleans' call spans.
        var commit = Assert.Single(trace.Values, a => a.OperationName == CheckpointTracing.Commit);
        var path = new List<Activity>();
        for (var span = commit; span.ParentSpanId != default && trace.TryGetValue(span.ParentSpanId, out var parent); span = parent) path.Add(parent);
        Assert.Equal(save.SpanId, path[^1].SpanId);
        Assert.Contains(path, a => a.OperationName == CheckpointTracing.Report);
        Assert.Contains(path, a => a.Source.Name.StartsWith("Microsoft.Orleans", StringComparison.Ordinal) && a.Kind == ActivityKind.Server);
        Assert.Equal(ActivityStatusCode.Unset, commit.Status);
    }
}
