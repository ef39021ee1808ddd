using Checkpointing.Contracts;
using Checkpointing.Processes;

namespace Checkpointing.Lab.Chaos;

/// <summary>
/// One training run of the chaos lab: W <c>ckpt-lab agent</c> processes on the agents' host, and what its
/// rank 0 was told is committed. When any rank ends (killed, or failed because storage or the cluster
/// was away too long) the whole attempt is ended and a new one starts, which resumes from the run
/// grain's last checkpoint, as a data-parallel job must.
/// </summary>
public sealed class ChaosRun(RunId id, int ranks, Func<RunId, int, long, ChildProcess> startRank, Action<string> log)
{
    private readonly Lock _lock = new();
    private readonly List<string> _committed = [];
    private readonly Dictionary<int, (string? Error, string? Kind)> _lastError = [];
    private ChildProcess[] _ranks = [];
    private Task[] _readers = [];

    public RunId Id { get; } = id;
    /// <summary>The run's max_to_keep; null keeps every checkpoint.</summary>
    public int? MaxToKeep { get; init; }
    public long Epoch { get; private set; }
    public int Attempts { get; private set; }

    /// <summary>Why the last attempt that ended did (<see cref="EndCause"/> and its message), as the supervisor saw it.</summary>
    public (string Cause, string Message)? LastEnd { get; set; }

    /// <summary>Names rank 0 was told are committed, in the order it was told.</summary>
    public IReadOnlyList<string> Committed
    {
        get { lock (_lock) return [.. _committed]; }
    }

    public bool Running => _ranks.Length > 0 && _ranks.All(r => !r.HasExited);

    /// <summary>A new attempt (epoch) on the run grain, and its ranks started.</summary>
    public async Task StartAttemptAsync(ITrainingRunGrain grain)
    {
        await StopAsync();
        Epoch = await grain.StartAttempt();
        Attempts++;
        lock (_lock) _lastError.Clear();
        _ranks = Enumerable.Range(0, ranks).Select(rank => startRank(Id, rank, Epoch)).ToArray();
        _readers = _ranks.Select((process, rank) => FollowAsync(process, rank)).ToArray();
        log($"run {Id}: attempt {Epoch} started (pids {string.Join(", ", _ranks.Select(r => r.Id))})");
    }

    /// <summary>SIGKILL one rank, as a machine failure would.</summary>
    public Task KillRankAsync(int rank) => rank < _ranks.Length ? _ranks[rank].KillAsync() : Task.CompletedTask;

    public async Task StopAsync()
    {
        foreach (var rank in _ranks) await rank.DisposeAsync();
        await Task.WhenAll(_readers);
        _ranks = [];
        _readers = [];
    }

    /// <summary>Why the attempt ended, when a rank ended: its error event or last stderr line.</summary>
    public string? Ended()
    {
        var ended = _ranks.Select((process, rank) => (process, rank)).FirstOrDefault(r => r.process.HasExited);
        if (ended.process is null) return null;
        string? error;
        lock (_lock) error = _lastError.GetValueOrDefault(ended.rank).Error;
        return $"rank {ended.rank} (pid {ended.process.Id}) exited with {ended.process.ExitCode}: {error ?? ended.process.ErrorTail.Split('\n')[^1]}";
    }

    /// <summary>
    /// Why the attempt ended, as one word: the failure kind of the first rank that ended (<c>storage_unavailable</c>,
    /// <c>silo_unreachable</c>, <c>refused</c>, ...), <c>killed</c> for a rank ended by SIGKILL, else <c>exit_N</c>.
    /// </summary>
    public string? EndCause()
    {
        var ended = _ranks.Select((process, rank) => (process, rank)).FirstOrDefault(r => r.process.HasExited);
        if (ended.process is null) return null;
        string? kind;
        lock (_lock) kind = _lastError.GetValueOrDefault(ended.rank).Kind;
        return kind ?? (ended.process.ExitCode == 128 + 9 ? "killed" : $"exit_{ended.process.ExitCode}");
    }

    private async Task FollowAsync(ChildProcess process, int rank)
    {
        await foreach (var e in process.Events.ReadAllAsync())
        {
            switch ((string?)e["event"])
            {
                case "saved" when rank == 0:
                    lock (_lock) _committed.Add((string)e["name"]!);
                    break;
                case "error":
                    lock (_lock) _lastError[rank] = ((string?)e["error"], (string?)e["kind"]);
                    break;
            }
        }
    }
}
