namespace Checkpointing.Lab.Chaos;

/// <summary>What the invariant checker found: counts of trouble, and one line per finding.</summary>
public sealed class ChaosFindings
{
    private readonly Lock _lock = new();
    private readonly List<string> _details = [];
    private int _lost, _double, _regressions, _errors, _quota;

    public int QuotaViolations => _quota;
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
