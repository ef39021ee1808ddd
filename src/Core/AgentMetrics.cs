using System.Diagnostics;
using System.Diagnostics.Metrics;
using TorchSharp;

namespace Checkpointing.Core;

/// <summary>
/// A training process's checkpoint metrics, meter <see cref="MeterName"/> (System.Diagnostics.Metrics: any
/// OpenTelemetry MeterProvider that adds this meter exports them; <c>ckpt-lab agent</c> sends them over OTLP when
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set). Durations in seconds, sizes in bytes of tensor data.
/// </summary>
public static class AgentMetrics
{
    /// <summary>The name of the meter these instruments belong to: add it to a MeterProvider to export them.</summary>
    public const string MeterName = "Checkpointing.Agent";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>How long a save took to write (for an async save, the background write).</summary>
    public static readonly Histogram<double> SaveDuration = Meter.CreateHistogram<double>("ckpt_agent_save_duration", "s", "Time to write a checkpoint.");

    /// <summary>How long the training loop waited for a save: all of it for a sync save, the snapshot copy for an async one.</summary>
    public static readonly Histogram<double> SaveStall = Meter.CreateHistogram<double>("ckpt_agent_save_stall", "s", "Training time a save took.");

    /// <summary>Bytes of tensor data in each completed save (logical bytes: an incremental save counts what it did not write too).</summary>
    public static readonly Counter<long> SavedBytes = Meter.CreateCounter<long>("ckpt_agent_saved_bytes", "By", "Tensor bytes saved.");

    /// <summary>How long a load of a native checkpoint took to read and verify, before the model adopted the tensors.</summary>
    public static readonly Histogram<double> LoadDuration = Meter.CreateHistogram<double>("ckpt_agent_load_duration", "s", "Time to load a native checkpoint, verification included.");

    /// <summary>Bytes of tensor data in each native checkpoint loaded (its whole state, also when a resharded load read only slices).</summary>
    public static readonly Counter<long> LoadedBytes = Meter.CreateCounter<long>("ckpt_agent_loaded_bytes", "By", "Tensor bytes of native checkpoints loaded.");

    /// <summary>The "mode" tag that save measurements carry: "async" for an <see cref="Checkpointer.AsyncSave"/>, else "sync".</summary>
    public static KeyValuePair<string, object?> Mode(bool async) => new("mode", async ? "async" : "sync");

    /// <summary>Seconds elapsed since <paramref name="timestamp"/>, a <see cref="Stopwatch.GetTimestamp"/> value.</summary>
    public static double SecondsSince(long timestamp) => Stopwatch.GetElapsedTime(timestamp).TotalSeconds;

    /// <summary>Bytes of the tensors in a state tree (nested dictionaries and lists), walked without recursion.</summary>
    public static long TensorBytes(object? state)
    {
        long bytes = 0;
        var pending = new Stack<object?>([state]);
        while (pending.Count > 0)
        {
            switch (pending.Pop())
            {
                case torch.Tensor tensor:
                    bytes += tensor.numel() * tensor.ElementSize;
                    break;
                case System.Collections.IDictionary dictionary:
                    foreach (System.Collections.DictionaryEntry entry in dictionary) pending.Push(entry.Value);
                    break;
                case IEnumerable<KeyValuePair<string, object?>> pairs:
                    foreach (var pair in pairs) pending.Push(pair.Value);
                    break;
                case System.Collections.IList list:
                    foreach (var item in list) pending.Push(item);
                    break;
            }
        }
        return bytes;
    }
}
