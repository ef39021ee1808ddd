using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>Peak resident memory of a save and of a load, over the process before the model existed (so the model itself is included).</summary>
public sealed record PeakMemory(long SaveBytes, long LoadBytes);
