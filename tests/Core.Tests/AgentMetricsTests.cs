using System.Diagnostics.Metrics;

namespace Checkpointing.Core.Tests;

/// <summary>The agent's checkpoint metrics (meter Checkpointing.Agent) as a MeterListener, like an OpenTelemetry exporter, sees them.</summary>
public sealed class AgentMetricsTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly MeterListener _listener = new();
    private readonly List<(string Instrument, double Value, string? Mode)> _measurements = [];

    public AgentMetricsTests()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == AgentMetrics.MeterName) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
        _listener.Start();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        string? mode = null;
        foreach (var tag in tags) if (tag.Key == "mode") mode = tag.Value as string;
        lock (_measurements) _measurements.Add((instrument.Name, value, mode));
    }

    public void Dispose()
    {
        _listener.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task A_sync_save_an_async_save_and_a_load_record_durations_stalls_and_bytes()
    {
        var model = Models.Small();
        var bytes = model.state_dict().Values.Sum(t => t.numel() * t.ElementSize);
        await new Checkpointer(model, _dir.Sub("sync")).SaveAsync("c");
        var asyncCheckpointer = new Checkpointer(model, _dir.Sub("async")) { AsyncSave = true };
        await asyncCheckpointer.SaveAsync("c");
        await asyncCheckpointer.WaitForPendingSaveAsync();
        await new Checkpointer(Models.Small()).LoadAsync(_dir.Sub("sync/c"));

        List<(string Instrument, double Value, string? Mode)> seen;
        lock (_measurements) seen = [.. _measurements];
        foreach (var mode in new[] { "sync", "async" })
        {
            Assert.Contains(seen, m => m.Instrument == "ckpt_agent_save_duration" && m.Mode == mode && m.Value > 0);
            Assert.Contains(seen, m => m.Instrument == "ckpt_agent_save_stall" && m.Mode == mode && m.Value > 0);
            Assert.Contains(seen, m => m.Instrument == "ckpt_agent_saved_bytes" && m.Mode == mode && m.Value == bytes);
        }
        Assert.Contains(seen, m => m.Instrument == "ckpt_agent_load_duration" && m.Value > 0);
        Assert.Contains(seen, m => m.Instrument == "ckpt_agent_loaded_bytes" && m.Value == bytes);
    }
}
