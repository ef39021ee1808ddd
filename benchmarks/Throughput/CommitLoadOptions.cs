using System.Text.Json.Nodes;
using Orleans.Runtime;

namespace Checkpointing.Benchmarks.Throughput;

/// <param name="Rate">Checkpoints started per second across all runs (open loop), or null: every run starts its next checkpoint as soon as its last one ends (a closed-loop burst).</param>
public sealed record CommitLoadOptions(int Runs, int Ranks, int Commits, int Tensors, TimeSpan CommitTimeout, double? Rate = null);
