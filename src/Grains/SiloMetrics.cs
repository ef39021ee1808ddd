using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>
/// The control plane's metrics, meter <see cref="MeterName"/>; the silo host exports them in Prometheus
/// format at <c>/metrics</c> (a counter <c>ckpt_commits</c> is scraped as <c>ckpt_commits_total</c>, the
/// histogram <c>ckpt_commit_duration</c> in seconds as <c>ckpt_commit_duration_seconds</c>).
/// </summary>
public sealed class SiloMetrics : IDisposable
{
    /// <summary>The name of the meter every instrument here belongs to; the silo host exports it.</summary>
    public const string MeterName = "Checkpointing.Silo";

    private readonly Meter _meter;
    private readonly ConcurrentDictionary<string, long> _retainedByTenant = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<RunId, Func<RunHealthView>> _activeRuns = new();

    /// <summary>Creates the meter and its instruments from the host's <paramref name="meters"/>.</summary>
    public SiloMetrics(IMeterFactory meters)
    {
        _meter = meters.Create(MeterName);
        Commits = _meter.CreateCounter<long>("ckpt_commits", description: "Checkpoints committed (every rank reported, manifest and run state durable).");
        CommitDuration = _meter.CreateHistogram<double>("ckpt_commit_duration", "s", "From a checkpoint's first Begin to its durable commit.");
        Aborts = _meter.CreateCounter<long>("ckpt_aborts", description: "Pending checkpoints abandoned: expired, refused at commit, or superseded by a new attempt.");
        Deletions = _meter.CreateCounter<long>("ckpt_deletions", description: "Owed deletions carried out (evicted, replaced or abandoned checkpoints' files).");
        _meter.CreateObservableGauge("ckpt_tenant_retained_bytes", () => _retainedByTenant.Select(t => new Measurement<long>(t.Value, new KeyValuePair<string, object?>("tenant", t.Key))),
            "By", "Bytes of checkpoints a tenant retains, as its tenant grain last accounted them on this silo.");
        _meter.CreateObservableGauge("ckpt_runs", RunsByState, description: "Runs active on this silo, by health state (waiting, healthy, stalled, checkpointing, rank_missing, failed, finished).");
        _meter.CreateObservableGauge("ckpt_run_heartbeat_age", HeartbeatAges, "s", "Seconds since any rank of a run active on this silo was last heard from (runs that have been heard from).");
    }

    /// <summary>Counts the run in <c>ckpt_runs</c> and <c>ckpt_run_heartbeat_age</c> until the returned handle is disposed (the activation ends).</summary>
    public IDisposable TrackRun(RunId run, Func<RunHealthView> health)
    {
        _activeRuns[run] = health;
        return new RunTracking(() => _activeRuns.TryRemove(new KeyValuePair<RunId, Func<RunHealthView>>(run, health)));
    }

    private IEnumerable<Measurement<int>> RunsByState()
    {
        var counts = Enum.GetValues<RunHealth>().ToDictionary(state => state, _ => 0);
        foreach (var health in _activeRuns.Values) counts[health().State]++;
        return counts.Select(c => new Measurement<int>(c.Value, new KeyValuePair<string, object?>("state", RunJson.Name(c.Key))));
    }

    private IEnumerable<Measurement<double>> HeartbeatAges()
    {
        var now = DateTimeOffset.UtcNow;
        foreach (var (run, health) in _activeRuns)
        {
            if (health().LastHeartbeatUtc is { } last)
                yield return new Measurement<double>(Math.Round((now - last).TotalSeconds, 3), Tenant(run.Tenant), new KeyValuePair<string, object?>("run", run.Run));
        }
    }

    private sealed class RunTracking(Action stop) : IDisposable
    {
        public void Dispose() => stop();
    }

    /// <summary><c>ckpt_commits</c>: checkpoints committed (every rank reported, manifest and run state durable), by tenant.</summary>
    public Counter<long> Commits { get; }
    /// <summary><c>ckpt_commit_duration</c>, in seconds: from a checkpoint's first Begin to its durable commit, by tenant.</summary>
    public Histogram<double> CommitDuration { get; }
    /// <summary><c>ckpt_aborts</c>: pending checkpoints abandoned, by tenant and <see cref="AbortReason"/>.</summary>
    public Counter<long> Aborts { get; }
    /// <summary><c>ckpt_deletions</c>: owed deletions carried out (evicted, replaced or abandoned checkpoints' files), by tenant.</summary>
    public Counter<long> Deletions { get; }

    /// <summary>Sets what <c>ckpt_tenant_retained_bytes</c> shows for <paramref name="tenant"/>: the <paramref name="bytes"/> all its runs retain.</summary>
    public void ReportRetained(string tenant, long bytes) => _retainedByTenant[tenant] = bytes;

    /// <summary>The <c>tenant</c> tag every measurement carries.</summary>
    public static KeyValuePair<string, object?> Tenant(string tenant) => new("tenant", tenant);

    /// <summary>Disposes the meter; its instruments stop publishing.</summary>
    public void Dispose() => _meter.Dispose();
}
