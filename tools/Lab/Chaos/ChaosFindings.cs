namespace Checkpointing.Lab.Chaos;

/// <summary>What the invariant checker found: counts of trouble, and one line per finding.</summary>
public sealed class ChaosFindings
{
    private readonly Lock _lock = new();
    private readonly List<string> _details = [];
    private int _lost, _double, _regressions, _errors, _quota, _incompleteMemory, _memoryRegressions;

    public int QuotaViolations => _quota;
    /// <summary>Resumes from a memory checkpoint that was never seen committed, or ranks of one attempt resuming from different checkpoints.</summary>
    public int IncompleteMemoryResumes => _incompleteMemory;
    /// <summary>Resumes older than a memory checkpoint committed before the attempt began, without the grain having found it incomplete.</summary>
    public int MemoryRegressions => _memoryRegressions;
    public int LostCommits => _lost;
    public int DoubleCommits => _double;
    public int TagRegressions => _regressions;
    public int Errors => _errors;
    public int OrphanBlobs { get; set; }
    public int UnresumableRuns { get; set; }

    public IReadOnlyList<string> Details
    {
        get { lock (_lock) return [.. _details]; }
    }

    public void Lost(string what) => Add(ref _lost, "lost: " + what);
    public void Double(string what) => Add(ref _double, "double: " + what);
    public void Regression(string what) => Add(ref _regressions, "tag regression: " + what);
    public void Error(string what) => Add(ref _errors, "error: " + what);
    public void OverQuota(string what) => Add(ref _quota, "over quota: " + what);
    public void IncompleteMemoryResume(string what) => Add(ref _incompleteMemory, "incomplete memory resume: " + what);
    public void MemoryRegression(string what) => Add(ref _memoryRegressions, "memory regression: " + what);

    public void Note(string what)
    {
        lock (_lock) _details.Add(what);
    }

    private void Add(ref int count, string what)
    {
        lock (_lock)
        {
            count++;
            _details.Add(what);
        }
    }
}
