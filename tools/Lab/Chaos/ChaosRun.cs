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
    private readonly List<(long Epoch, DateTime StartedUtc)> _attempts = [];
    private readonly List<Resume> _resumes = [];
    private readonly Dictionary<string, DateTime> _memoryCommitted = new(StringComparer.Ordinal);
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

    /// <summary>How a rank of attempt <paramref name="Epoch"/> resumed: tier, checkpoint, first iteration and the grain's reason.</summary>
    public sealed record Resume(long Epoch, int Rank, string Tier, string? Name, long StartIteration, string? Reason);

    /// <summary>Every rank's resume, in the order they were reported.</summary>
    public IReadOnlyList<Resume> Resumes
    {
        get { lock (_lock) return [.. _resumes]; }
    }

    /// <summary>Each attempt and when it was started.</summary>
    public IReadOnlyList<(long Epoch, DateTime StartedUtc)> AttemptStarts
    {
        get { lock (_lock) return [.. _attempts]; }
    }

    /// <summary>Memory checkpoints known committed (a rank was told, or the run grain showed it), with when that was first seen.</summary>
    public IReadOnlyDictionary<string, DateTime> MemoryCommitted
    {
        get { lock (_lock) return new Dictionary<string, DateTime>(_memoryCommitted, StringComparer.Ordinal); }
    }

    /// <summary>The run grain shows <paramref name="name"/> as its committed memory checkpoint.</summary>
    public void SawMemoryCheckpoint(string name)
    {
        lock (_lock) _memoryCommitted.TryAdd(name, DateTime.UtcNow);
    }

    /// <summary>The live ranks' process ids.</summary>
    public IEnumerable<int> RankPids => _ranks.Where(r => !r.HasExited).Select(r => r.Id);

    public bool Running => _ranks.Length > 0 && _ranks.All(r => !r.HasExited);

    /// <summary>A new attempt (epoch) on the run grain, and its ranks started.</summary>
    public async Task StartAttemptAsync(ITrainingRunGrain grain)
    {
        await StopAsync();
        Epoch = await grain.StartAttempt();
        Attempts++;
        lock (_lock) _attempts.Add((Epoch, DateTime.UtcNow));
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
                case "start":
                    var resume = new Resume((long?)e["epoch"] ?? Epoch, rank, (string?)e["tier"] ?? "?", (string?)e["resumed_from"], (long?)e["start_iter"] ?? 0, (string?)e["reason"]);
                    lock (_lock) _resumes.Add(resume);
                    if (rank == 0) log($"run {Id}: attempt {resume.Epoch} resumed from {resume.Tier} {resume.Name ?? "-"} at iteration {resume.StartIteration} ({resume.Reason})");
                    break;
                case "memory_committed":
                    lock (_lock) _memoryCommitted.TryAdd((string)e["name"]!, DateTime.UtcNow);
                    break;
                case "error":
                    lock (_lock) _lastError[rank] = ((string?)e["error"], (string?)e["kind"]);
                    break;
            }
        }
    }
}
