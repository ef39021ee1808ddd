namespace Checkpointing.Abstractions;

/// <summary>
/// fvcore's PeriodicCheckpointer settings: save every <see cref="Period"/> iterations, save
/// "{prefix}_final" at <see cref="MaxIter"/> - 1, keep the newest <see cref="MaxToKeep"/> periodic checkpoints; and, in
/// cluster mode, take an in-memory checkpoint every <see cref="MemoryPeriod"/> iterations (docs/memory-tier.md).
/// </summary>
public sealed record PeriodicPolicy(
    int Period,
    long? MaxIter = null,
    int? MaxToKeep = null,
    string FilePrefix = "model",
    int? MemoryPeriod = null)
{
    /// <summary>The prefix of memory-tier checkpoints' names (<see cref="MemoryName"/>), apart from durable ones in a run's history.</summary>
    public const string MemoryPrefix = "memory";

    /// <summary>This policy, once its settings are checked.</summary>
    /// <exception cref="ArgumentOutOfRangeException">a period below 1, or a max_iter or max_to_keep given and below 1</exception>
    /// <exception cref="ArgumentException">a <see cref="FilePrefix"/> that is not a valid <see cref="CheckpointName"/></exception>
    public PeriodicPolicy Validated()
    {
        if (Period < 1) throw new ArgumentOutOfRangeException(nameof(Period), Period, "period must be at least 1.");
        if (MaxIter is < 1) throw new ArgumentOutOfRangeException(nameof(MaxIter), MaxIter, "max_iter must be at least 1 when given.");
        if (MaxToKeep is < 1) throw new ArgumentOutOfRangeException(nameof(MaxToKeep), MaxToKeep, "max_to_keep must be at least 1 when given.");
        if (MemoryPeriod is < 1) throw new ArgumentOutOfRangeException(nameof(MemoryPeriod), MemoryPeriod, "memory_period must be at least 1 when given.");
        CheckpointName.Validate(FilePrefix, "file prefix");
        return this;
    }

    /// <summary>The name of the periodic checkpoint saved at <paramref name="iteration"/>: "{prefix}_" and the iteration in at least 7 digits, e.g. <c>model_0000019</c>.</summary>
    public string PeriodicName(long iteration) => $"{FilePrefix}_{iteration:D7}";

    /// <summary>The name of the checkpoint saved at <see cref="MaxIter"/> - 1: "{prefix}_final".</summary>
    public string FinalName => $"{FilePrefix}_final";

    /// <summary>Whether <paramref name="name"/> is one of this policy's periodic names ("{prefix}_" and at least 7 digits): those max_to_keep counts.</summary>
    public bool IsPeriodicName(string name) =>
        name.Length >= FilePrefix.Length + 8 && name.StartsWith(FilePrefix, StringComparison.Ordinal) && name[FilePrefix.Length] == '_'
        && !name.AsSpan(FilePrefix.Length + 1).ContainsAnyExceptInRange('0', '9');

    /// <summary>The iteration a periodic name was saved at (see <see cref="IsPeriodicName"/>); past <see cref="long.MaxValue"/>, that.</summary>
    public long IterationOfPeriodicName(string name) =>
        long.TryParse(name.AsSpan(FilePrefix.Length + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var iteration) ? iteration : long.MaxValue;

    /// <summary>
    /// max_to_keep, the one eviction rule of local folders and run grains: of the periodic checkpoints among
    /// <paramref name="oldestFirst"/>, those older than the newest <see cref="MaxToKeep"/>, except the tagged one (which
    /// still counts, and goes once it is no longer tagged). Never a final or other non-periodic checkpoint.
    /// </summary>
    public IReadOnlyList<string> Evictions(IEnumerable<string> oldestFirst, string? tagged = null)
    {
        if (MaxToKeep is not { } keep) return [];
        var periodic = oldestFirst.Where(IsPeriodicName).ToList();
        return periodic.Take(Math.Max(0, periodic.Count - keep)).Where(name => name != tagged).ToList();
    }

    /// <summary>Whether a periodic checkpoint is due after <paramref name="iteration"/> (0-based): every <see cref="Period"/>-th iteration, as fvcore counts them.</summary>
    public bool IsPeriodicStep(long iteration) => (iteration + 1) % Period == 0;

    /// <summary>
    /// Whether a memory-tier checkpoint is due after <paramref name="iteration"/>: every <see cref="MemoryPeriod"/>-th iteration,
    /// counted as periodic ones are, except where a durable periodic checkpoint is due anyway; never without a memory period.
    /// </summary>
    public bool IsMemoryStep(long iteration) => MemoryPeriod is { } period && (iteration + 1) % period == 0 && !IsPeriodicStep(iteration);

    /// <summary>The name of the memory-tier checkpoint taken at <paramref name="iteration"/>, e.g. <c>memory_0000009</c>.</summary>
    public static string MemoryName(long iteration) => $"{MemoryPrefix}_{iteration:D7}";

    /// <summary>Whether <paramref name="iteration"/> is the last one, <see cref="MaxIter"/> - 1 or later; never when <see cref="MaxIter"/> is null.</summary>
    public bool IsFinalStep(long iteration) => MaxIter is { } max && iteration >= max - 1;
}
