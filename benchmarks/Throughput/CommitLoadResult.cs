using System.Text.Json.Nodes;
using Orleans.Runtime;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>What the timed window saw: its length, the latency of every committed checkpoint, failed checkpoints by exception type and the first message of each type.</summary>
public sealed record CommitLoadResult(TimeSpan Window, IReadOnlyList<double> LatenciesMs, IReadOnlyDictionary<string, int> FailuresByType, IReadOnlyDictionary<string, string> FirstErrors);
