using System.Collections.Concurrent;
using Azure.Storage.Blobs;
using Checkpointing.Abstractions;
using Checkpointing.Cli;
using Checkpointing.Contracts;
using Checkpointing.Processes;

namespace Checkpointing.Lab.Chaos;

/// <summary>
/// One chaos session: starts the runs, keeps them and the silos going (a supervisor, as a job
/// scheduler and a service manager would), strikes faults drawn from the seed, samples every run's
/// last-checkpoint tag, and at the end heals everything and runs the invariant checker.
/// </summary>
internal sealed class ChaosSession
{
    private const string Tenant = "chaos";
    private const int MaxToKeep = 3;
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(120);

    public static readonly string[] FaultKinds = ["silo_kill", "silo_term", "partition", "netem", "azurite_restart", "agent_kill", "holder_kill"];

    private readonly ChaosOptions _o;
    private readonly NetworkLab _lab;
    private readonly ChaosCluster _cluster;
    private readonly IClusterClient _client;
    private readonly ICheckpointStore _store;
    private readonly byte[] _key;
    private readonly string _clusterId;
    private readonly Action<string> _say;
    private readonly Random _random;
    private readonly List<ChaosRun> _runs = [];
    private readonly ChaosFindings _findings = new();
    private readonly ConcurrentDictionary<string, long> _lastTag = new(StringComparer.Ordinal);
    private readonly IReadOnlyList<string> _faults;
    private ChaosHolders? _holders;
    private long _agentRssMax;
    // Held by a fault while it has a silo down on purpose, so the supervisor does not restart it under the fault.
    private readonly SemaphoreSlim _siloLock = new(1, 1);

    public ChaosSession(ChaosOptions options, NetworkLab lab, ChaosCluster cluster, IClusterClient client, ICheckpointStore store, byte[] key, string clusterId, Action<string> say)
    {
        _o = options;
        (_lab, _cluster, _client, _store, _key, _clusterId, _say) = (lab, cluster, client, store, key, clusterId, say);
        _random = new Random(_o.Seed);
        // Without a memory tier there is no holder to kill.
        _faults = _o.MemoryPeriod is null ? _o.Faults.Where(f => f != "holder_kill").ToList() : _o.Faults;
    }

    /// <summary>Attempts whose ranks resumed from a memory checkpoint, and those the grain sent to the durable tier because one was incomplete.</summary>
    public int MemoryResumes => _runs.Sum(r => r.Resumes.Where(x => x.Tier == "memory").Select(x => x.Epoch).Distinct().Count());
    /// <inheritdoc cref="MemoryResumes"/>
    public int MemoryFallbacks => _runs.Sum(r => r.Resumes.Where(x => x.Tier != "memory" && x.Reason?.Contains("could not fetch", StringComparison.Ordinal) == true).Select(x => x.Epoch).Distinct().Count());
    /// <summary>The holders at the end: bytes and snapshots kept, resident memory first, highest and now; null without a memory tier.</summary>
    public System.Text.Json.Nodes.JsonArray? HolderStats { get; private set; }
    /// <summary>The highest resident memory an agent process had, in MiB.</summary>
    public double AgentRssMaxMib => Math.Round(_agentRssMax / 1048576.0, 1);

    public Dictionary<string, int> Faults { get; } = [];
    public int Commits => _runs.Sum(r => r.Committed.Distinct().Count());
    public int Attempts => _runs.Sum(r => r.Attempts);
    public int SiloRestarts { get; private set; }
    /// <summary>Bytes of every object under the tenant's prefix in storage after the checks (what its quota must bound).</summary>
    public long? StoredBytes { get; private set; }
    /// <summary>Attempts the supervisor started again, by why the previous one ended (<see cref="ChaosRun.EndCause"/>).</summary>
    public Dictionary<string, int> RestartsByCause { get; } = [];
    /// <summary>For each run whose grain was on a silo when it was cut off: seconds from the cut to its next commit.</summary>
    public List<(string Run, double Seconds)> PartitionResumes { get; } = [];
    private readonly List<Task> _resumeWatches = [];
    /// <summary>Runs whose catalog has an archive state in storage at the end: archive moves ran under the faults.</summary>
    public int ArchivedCatalogs { get; private set; }

    public async Task<ChaosFindings> RunAsync()
    {
        var tenantToken = TenantTokens.Issue(_key, Tenant, DateTimeOffset.UtcNow.AddHours(12));
        await using var holders = _o.MemoryPeriod is null ? null : new ChaosHolders(_lab["agents"], _o.Repo, tenantToken, _say);
        _holders = holders;
        if (holders is not null)
        {
            for (var rank = 0; rank < _o.Ranks; rank++) await holders.StartAsync(rank);
        }
        await Retry("set the tenant's limits", () => _client.GetGrain<ITenantGrain>(Tenant).SetLimits(new TenantLimits(MaxRuns: null, MaxRetainedBytes: _o.QuotaBytes ?? 1L << 30)));
        for (var i = 0; i < _o.Runs; i++)
        {
            // The first run keeps every checkpoint: its catalog outgrows the run's state and is archived under the faults (ChaosCluster's small tail limit).
            // Under a binding quota every run keeps a few: one that kept all would soon hold the whole quota.
            var keepsAll = i == 0 && _o.QuotaBytes is null;
            var run = new ChaosRun(new RunId(Tenant, $"run{i}"), _o.Ranks, (id, rank, epoch) => StartRank(id, rank, epoch, tenantToken), _say) { MaxToKeep = keepsAll ? null : MaxToKeep };
            // With a memory tier, durable checkpoints are rarer, so that resumes from memory happen.
            await Retry($"create {run.Id}", () => Grain(run).Create(new PeriodicPolicy(_o.MemoryPeriod is null ? 10 : 30, MaxIter: 100_000_000, MaxToKeep: run.MaxToKeep,
                MemoryPeriod: _o.MemoryPeriod)));
            _runs.Add(run);
        }
        foreach (var run in _runs) await Retry($"start {run.Id}", () => run.StartAttemptAsync(Grain(run)));

        using var stop = new CancellationTokenSource();
        var supervisor = SuperviseAsync(stop.Token);
        var sampler = SampleTagsAsync(stop.Token);
        try
        {
            var deadline = DateTime.UtcNow.AddMinutes(_o.Minutes);
            while (DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromSeconds(_random.Next(6, 13)));
                if (DateTime.UtcNow >= deadline) break;
                await StrikeAsync();
                await QuickCheckAsync();
            }
            _say($"faults over: {string.Join(", ", Faults.Select(f => $"{f.Key} {f.Value}"))}; every run must commit again");
            await WaitForEveryRunToCommitAgainAsync();
            await Task.WhenAll(_resumeWatches);
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(supervisor, sampler);
            foreach (var run in _runs) await run.StopAsync();
        }
        await CheckAsync();
        if (holders is not null) HolderStats = await holders.StatsAsync();
        return _findings;
    }

    private ChildProcess StartRank(RunId id, int rank, long epoch, string token) => ChildProcess.Start("ip",
        [.. _lab["agents"].Launcher.Skip(1), "dotnet", typeof(ChaosSession).Assembly.Location, "agent", "--run", id.Key, "--rank", $"{rank}", "--world-size", $"{_o.Ranks}",
            "--epoch", $"{epoch}", "--width", "16", "--silo", string.Join(',', _cluster.Gateways), "--cluster-id", _clusterId, "--connect-timeout", "60",
            "--step-delay-ms", "100", "--incremental",
            .. _o.MemoryPeriod is null ? Array.Empty<string>() : ["--holder", ChaosHolders.Of(rank).Endpoint, "--holder-host", ChaosHolders.Of(rank).Host]],
        new Dictionary<string, string> { [ClusterOptions.TokenVariable] = token, [ClusterOptions.StorageVariable] = _cluster.ConnectionString });

    private ITrainingRunGrain Grain(ChaosRun run) => _client.GetGrain<ITrainingRunGrain>(run.Id.Key);

    /// <summary>One fault, drawn from the seed, applied and healed.</summary>
    private async Task StrikeAsync()
    {
        var kind = _faults[_random.Next(_faults.Count)];
        var silo = _random.Next(_cluster.SiloHosts.Count);
        Faults[kind] = Faults.GetValueOrDefault(kind) + 1;
        switch (kind)
        {
            case "silo_kill":
                await WithSiloLockAsync(async () =>
                {
                    _say($"fault: SIGKILL silo {silo}");
                    await _cluster.KillSiloAsync(silo);
                    await Task.Delay(TimeSpan.FromSeconds(_random.Next(1, 5)));
                    await _cluster.StartSiloAsync(silo);
                });
                break;
            case "silo_term":
                await WithSiloLockAsync(async () =>
                {
                    _say($"fault: SIGTERM silo {silo}");
                    await _cluster.TerminateSiloAsync(silo);
                    await _cluster.StartSiloAsync(silo);
                });
                break;
            case "partition":
                await WithSiloLockAsync(async () =>
                {
                    // Long enough for the others to declare it dead (ChaosCluster.MembershipSettings): it ends itself
                    // once healed, the supervisor starts it again, and its runs go on on the survivors meanwhile.
                    var host = _cluster.SiloHosts[silo];
                    var seconds = _random.Next(30, 41);
                    var hosted = await RunsHostedOnAsync(host);
                    _say($"fault: partition silo {silo} ({host.Address}) for {seconds} s; it hosts {(hosted.Count == 0 ? "no run" : string.Join(", ", hosted.Select(r => r.Id)))}");
                    await _lab.PartitionAsync(host);
                    _resumeWatches.Add(WatchResumeAsync(hosted, System.Diagnostics.Stopwatch.StartNew()));
                    await Task.Delay(TimeSpan.FromSeconds(seconds));
                    await _lab.HealPartitionAsync(host);
                });
                break;
            case "netem":
            {
                var host = _random.Next(4) == 0 ? _cluster.Storage : _cluster.SiloHosts[silo];
                var seconds = _random.Next(5, 16);
                _say($"fault: slow lossy link (tbf 256 kbit) on {host.Name} for {seconds} s");
                await _lab.DegradeAsync(host, kbit: 256);
                await Task.Delay(TimeSpan.FromSeconds(seconds));
                await _lab.RestoreLinkAsync(host);
                break;
            }
            case "azurite_restart":
                _say("fault: storage crash: its link cut, Azurite stopped, restarted on its data");
                await _cluster.CrashStorageAsync(_lab);
                await Task.Delay(TimeSpan.FromSeconds(_random.Next(1, 6)));
                await _cluster.RestartStorageAsync(_lab);
                break;
            case "holder_kill":
                await _holders!.KillAndReplaceAsync(_random.Next(_o.Ranks), TimeSpan.FromSeconds(_random.Next(1, 5)));
                break;
            case "agent_kill":
            {
                var run = _runs[_random.Next(_runs.Count)];
                var rank = _random.Next(_o.Ranks);
                _say($"fault: SIGKILL {run.Id} rank {rank}");
                await run.KillRankAsync(rank);
                break;
            }
        }
    }

    /// <summary>The runs whose grain is active on the silo of <paramref name="host"/> now.</summary>
    private async Task<List<ChaosRun>> RunsHostedOnAsync(LabHost host)
    {
        var hosted = new List<ChaosRun>();
        foreach (var run in _runs)
        {
            var view = await Retry($"read {run.Id}", () => Grain(run).Get());
            if (view?.HostedBy.Contains($"{host.Address}:{ChaosCluster.SiloPort}", StringComparison.Ordinal) == true) hosted.Add(run);
        }
        return hosted;
    }

    /// <summary>Records, for each run, the seconds from the cut until its next commit (none when it does not commit before the session settles).</summary>
    private async Task WatchResumeAsync(List<ChaosRun> runs, System.Diagnostics.Stopwatch sinceCut)
    {
        var before = runs.ToDictionary(r => r, r => r.Committed.Count);
        var waiting = runs.ToList();
        while (waiting.Count > 0 && sinceCut.Elapsed < TimeSpan.FromMinutes(_o.Minutes) + Settle)
        {
            foreach (var run in waiting.Where(r => r.Committed.Count > before[r]).ToList())
            {
                lock (PartitionResumes) PartitionResumes.Add((run.Id.Key, Math.Round(sinceCut.Elapsed.TotalSeconds, 1)));
                _say($"{run.Id} committed again {sinceCut.Elapsed.TotalSeconds:0.0} s after its silo was cut off");
                waiting.Remove(run);
            }
            await Task.Delay(TimeSpan.FromMilliseconds(250));
        }
    }

    private async Task WithSiloLockAsync(Func<Task> fault)
    {
        await _siloLock.WaitAsync();
        try { await fault(); }
        finally { _siloLock.Release(); }
    }

    /// <summary>Restarts silos that ended and runs whose attempt ended, until stopped.</summary>
    private async Task SuperviseAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), stop);
                if (await _siloLock.WaitAsync(0, CancellationToken.None))
                {
                    try { SiloRestarts += await _cluster.RestartExitedSilosAsync(); }
                    finally { _siloLock.Release(); }
                }
                foreach (var run in _runs.Where(r => !r.Running))
                {
                    var cause = run.EndCause() ?? "not_running";
                    var ended = run.Ended() ?? "not running";
                    run.LastEnd = (cause, ended);
                    _say($"{run.Id}: attempt {run.Epoch} ended ({ended}); starting a new one");
                    await run.StartAttemptAsync(Grain(run));
                    lock (RestartsByCause) RestartsByCause[cause] = RestartsByCause.GetValueOrDefault(cause) + 1;
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The cluster or storage is away (a fault): try again in a second.
                _say($"supervisor: {CliFailure.OneLine(e.Message)}");
            }
        }
    }

    /// <summary>Every second, each run's last-checkpoint tag; a tag whose iteration is below the previous sample's is a regression.</summary>
    private async Task SampleTagsAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            foreach (var run in _runs)
            {
                try
                {
                    if (_o.MemoryPeriod is not null && (await Grain(run).Get().WaitAsync(TimeSpan.FromSeconds(5), stop)).MemoryCheckpoint is { } memory) run.SawMemoryCheckpoint(memory.Name);
                    foreach (var pid in run.RankPids) _agentRssMax = Math.Max(_agentRssMax, JobHolders.ResidentBytes(pid) ?? 0);
                    var last = await Grain(run).GetLastCheckpoint().WaitAsync(TimeSpan.FromSeconds(5), stop);
                    if (last?.Iteration is not { } iteration) continue;
                    // A regression is a step back from the previous sample: counted once, not at every sample after it.
                    if (_lastTag.TryGetValue(run.Id.Key, out var previous) && iteration < previous) _findings.Regression($"{run.Id} tag went from iteration {previous} back to {iteration}");
                    _lastTag[run.Id.Key] = iteration;
                }
                catch (Exception) when (!stop.IsCancellationRequested)
                {
                    // unreachable during a fault: the next sample will tell
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            _holders?.SampleMemory();
            try { await Task.Delay(TimeSpan.FromSeconds(1), stop); }
            catch (OperationCanceledException) { return; }
        }
    }

    /// <summary>After each heal: every acknowledged commit is still in its run's catalog.</summary>
    private async Task QuickCheckAsync()
    {
        var checker = new ChaosChecker(_client, _store);
        foreach (var run in _runs) await Retry($"check {run.Id} after the heal", () => checker.CheckCatalogAsync(run.Id, run.MaxToKeep, run.Committed, _findings, loadEverything: false));
    }

    /// <summary>After the last fault, each run must commit at least one more checkpoint (it resumes and goes on).</summary>
    private async Task WaitForEveryRunToCommitAgainAsync()
    {
        var before = _runs.ToDictionary(r => r, r => r.Committed.Count);
        var deadline = DateTime.UtcNow + Settle;
        while (DateTime.UtcNow < deadline && _runs.Any(r => r.Committed.Count <= before[r])) await Task.Delay(TimeSpan.FromSeconds(1));
        foreach (var run in _runs.Where(r => r.Committed.Count <= before[r]))
        {
            if (_o.QuotaBytes is not null && run.LastEnd is ("refused", var message) && message.Contains("its limit is", StringComparison.Ordinal))
            {
                // The tenant's limit holds it back, as it must: its other runs keep what they retain.
                _findings.Note($"held back by the quota: {run.Id} ({message})");
                continue;
            }
            _findings.UnresumableRuns++;
            _findings.Note($"unresumable: {run.Id} committed nothing within {Settle.TotalSeconds:0} s after the faults ended");
        }
    }

    /// <summary>The full check, once the agents are stopped and garbage collection settled.</summary>
    private async Task CheckAsync()
    {
        var checker = new ChaosChecker(_client, _store);
        _say("agents stopped; waiting for pending checkpoints to expire and owed deletions to run");
        var deadline = DateTime.UtcNow + Settle;
        while (DateTime.UtcNow < deadline)
        {
            var pending = 0;
            foreach (var run in _runs) pending += (await Retry($"read {run.Id}", () => Grain(run).Get()))?.Pending.Count ?? 0;
            if (pending == 0) break;
            await Task.Delay(TimeSpan.FromSeconds(2));
        }
        IReadOnlyList<string> orphans = [];
        while (DateTime.UtcNow < deadline)
        {
            orphans = await Retry("list the blobs", () => checker.OrphanBlobsAsync(_runs.Select(r => r.Id))) ?? [];
            if (orphans.Count == 0) break;
            await Task.Delay(TimeSpan.FromSeconds(3));
        }
        _findings.OrphanBlobs = orphans.Count;
        foreach (var orphan in orphans.Take(20)) _findings.Note($"orphan blob: {orphan}");
        if (_o.MemoryPeriod is not null) foreach (var run in _runs) CheckMemoryResumes(run);
        _say("loading every retained checkpoint");
        foreach (var run in _runs) await Retry($"check {run.Id}", () => checker.CheckCatalogAsync(run.Id, run.MaxToKeep, run.Committed, _findings, loadEverything: true));
        ArchivedCatalogs = await Retry("list the grain states", CountArchivedCatalogsAsync);
        var tenant = await Retry("read the tenant", () => _client.GetGrain<ITenantGrain>(Tenant).Get());
        if (tenant is not null && tenant.RetainedBytes > tenant.Limits.MaxRetainedBytes)
            _findings.OverQuota($"tenant {Tenant} counts {tenant.RetainedBytes:N0} retained bytes, over its limit of {tenant.Limits.MaxRetainedBytes:N0}");
        // From storage, not from grain state: every object under the tenant's prefix, once pending checkpoints expired and owed deletions ran.
        StoredBytes = await Retry("sum the tenant's objects", async () => await _store.ListAsync($"tenants/{Tenant}/").Select(entry => entry.Length).SumAsync());
        if (tenant?.Limits.MaxRetainedBytes is { } limit && StoredBytes > limit)
            _findings.OverQuota($"tenant {Tenant} holds {StoredBytes:N0} bytes in storage, over its limit of {limit:N0}");
    }

    /// <summary>
    /// The memory tier's invariants, from the ranks' own reports: the ranks of an attempt resume from one and the same
    /// checkpoint; a memory resume loads a checkpoint known committed (every rank's snapshot held); and an attempt never
    /// resumes older than the newest memory checkpoint committed before it began, except those a resume found incomplete.
    /// </summary>
    private void CheckMemoryResumes(ChaosRun run)
    {
        var committed = run.MemoryCommitted;
        var starts = run.AttemptStarts.OrderBy(a => a.Epoch).ToList();
        var lost = run.Resumes.Where(r => r.Reason?.Contains("could not fetch", StringComparison.Ordinal) == true || r.Reason?.Contains("unusable", StringComparison.Ordinal) == true)
            .SelectMany(r => System.Text.RegularExpressions.Regex.Matches(r.Reason!, "memory_[0-9]{7}").Select(m => m.Value)).ToHashSet(StringComparer.Ordinal);
        foreach (var attempt in run.Resumes.GroupBy(r => r.Epoch))
        {
            if (attempt.Select(r => (r.Tier, r.Name)).Distinct().Count() > 1)
                _findings.IncompleteMemoryResume($"{run.Id} attempt {attempt.Key}: ranks resumed from {string.Join(", ", attempt.Select(r => $"rank {r.Rank} {r.Tier} {r.Name}"))}");
            var resume = attempt.First();
            if (resume.Tier == "memory" && (resume.Name is null || !committed.ContainsKey(resume.Name)))
                _findings.IncompleteMemoryResume($"{run.Id} attempt {attempt.Key} resumed from {resume.Name}, never seen committed");
            var index = starts.FindIndex(a => a.Epoch == attempt.Key);
            if (index < 1) continue;
            // Every memory checkpoint known committed before the attempt began, but those a resume found incomplete (named in its reason).
            var startedUtc = starts[index].StartedUtc;
            var newest = committed.Where(c => c.Value < startedUtc && !lost.Contains(c.Key)).Select(c => ChaosChecker.IterationOf(c.Key)).DefaultIfEmpty(-1).Max();
            var incomplete = resume.Reason?.Contains("could not fetch", StringComparison.Ordinal) == true || resume.Reason?.Contains("unusable", StringComparison.Ordinal) == true;
            if (resume.StartIteration - 1 < newest && !incomplete)
                _findings.MemoryRegression($"{run.Id} attempt {attempt.Key} resumed at iteration {resume.StartIteration} ({resume.Tier} {resume.Name}: {resume.Reason}) though memory_{newest:D7} had committed");
        }
    }

    private async Task<int> CountArchivedCatalogsAsync()
    {
        var count = 0;
        var container = new BlobContainerClient(_cluster.ConnectionString, ChaosCluster.GrainStateContainer);
        await foreach (var blob in container.GetBlobsAsync()) if (blob.Name.Contains("catalog", StringComparison.OrdinalIgnoreCase)) count++;
        return count;
    }

    /// <summary>A call through the cluster right after a fault may need a few tries while membership settles; failing for 60 s is an error.</summary>
    private async Task<T?> Retry<T>(string what, Func<Task<T>> call)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                return await call();
            }
            catch (Exception e) when (e is not RunRefusedException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromSeconds(1));
            }
            catch (Exception e)
            {
                _findings.Error($"{what}: {CliFailure.OneLine(e.Message)}");
                return default;
            }
        }
    }

    private Task Retry(string what, Func<Task> call) => Retry<bool>(what, async () =>
    {
        await call();
        return true;
    });
}
