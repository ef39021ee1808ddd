using System.Diagnostics;

namespace Checkpointing.Formats.Interop;

/// <summary>
/// Limits on what reading one untrusted interop file (<c>.pth</c>/<c>.pt</c>/<c>.pyth</c> zip, <c>.pkl</c>
/// pickle, the numpy arrays inside) may cost. A file over any limit fails with a
/// <see cref="CheckpointFormatException"/> (check "read budget") naming the file and the limit;
/// nothing is half-loaded. The defaults admit every real checkpoint we know of by a wide margin.
/// </summary>
public sealed record ReadBudget
{
    /// <summary>The default limits, used wherever a reader is given no budget (null).</summary>
    public static ReadBudget Default { get; } = new();

    /// <summary>Deepest nesting of containers (lists, tuples, dicts, sets) in the loaded value.</summary>
    public int MaxDepth { get; init; } = 64;

    /// <summary>
    /// Most values: container items the pickle machine stores, and nodes of the loaded tree counting a
    /// shared value once per place it appears (what every consumer that walks the tree will visit).
    /// </summary>
    public long MaxObjects { get; init; } = 2_000_000;

    /// <summary>Most pickle memo entries.</summary>
    public long MaxMemoEntries { get; init; } = 1_000_000;

    /// <summary>Most scalars in one dict key (tuples of tuples count every item they reach).</summary>
    public int MaxKeyItems { get; init; } = 256;

    /// <summary>Materialized bytes allowed besides <see cref="MaterializedBytesPerFileByte"/>: inflated records, tensor copies, decoded strings.</summary>
    public long MaterializedBytesFloor { get; init; } = 64L << 20;

    /// <summary>Materialized bytes allowed per byte of the file (besides the floor).</summary>
    public long MaterializedBytesPerFileByte { get; init; } = 4;

    /// <summary>Largest inflated-to-compressed ratio of one zip record (torch.save stores records uncompressed).</summary>
    public long MaxCompressionRatio { get; init; } = 100;

    /// <summary>Longest time the whole read may take.</summary>
    public TimeSpan MaxTime { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>The materialized-byte limit for a file of <paramref name="fileBytes"/> bytes (saturates instead of overflowing).</summary>
    public long MaterializedBytesFor(long fileBytes)
    {
        var perFile = fileBytes > 0 && MaterializedBytesPerFileByte > long.MaxValue / fileBytes ? long.MaxValue : fileBytes * MaterializedBytesPerFileByte;
        return perFile > long.MaxValue - MaterializedBytesFloor ? long.MaxValue : perFile + MaterializedBytesFloor;
    }
}

/// <summary>Charges the work of reading one file against its <see cref="ReadBudget"/>; throws once a limit is passed.</summary>
internal sealed class BudgetMeter
{
    public const string Check = "read budget";
    private const int TimeCheckInterval = 4096;

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly long _materializedLimit;
    private long _materialized;
    private long _objects;
    private int _ticks;

    public BudgetMeter(ReadBudget budget, string source, long fileBytes)
    {
        ArgumentNullException.ThrowIfNull(budget);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budget.MaxDepth, nameof(ReadBudget.MaxDepth));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budget.MaxObjects, nameof(ReadBudget.MaxObjects));
        ArgumentOutOfRangeException.ThrowIfNegative(budget.MaxMemoEntries, nameof(ReadBudget.MaxMemoEntries));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budget.MaxKeyItems, nameof(ReadBudget.MaxKeyItems));
        ArgumentOutOfRangeException.ThrowIfNegative(budget.MaterializedBytesFloor, nameof(ReadBudget.MaterializedBytesFloor));
        ArgumentOutOfRangeException.ThrowIfNegative(budget.MaterializedBytesPerFileByte, nameof(ReadBudget.MaterializedBytesPerFileByte));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budget.MaxCompressionRatio, nameof(ReadBudget.MaxCompressionRatio));
        ArgumentOutOfRangeException.ThrowIfLessThan(budget.MaxTime, TimeSpan.Zero, nameof(ReadBudget.MaxTime));
        Budget = budget;
        Source = source;
        _materializedLimit = budget.MaterializedBytesFor(fileBytes);
    }

    public ReadBudget Budget { get; }
    public string Source { get; }

    /// <summary>Counts <paramref name="count"/> values stored by the pickle machine.</summary>
    public void ChargeObjects(long count)
    {
        _objects += count;
        if (_objects > Budget.MaxObjects)
            throw Exceeded($"the pickle stores more than {Budget.MaxObjects} values (limit {nameof(ReadBudget.MaxObjects)} = {Budget.MaxObjects})");
        Tick();
    }

    /// <summary>Reserves <paramref name="bytes"/> before they are allocated.</summary>
    public void ChargeBytes(long bytes, string what)
    {
        if (bytes < 0 || bytes > _materializedLimit - _materialized)
            throw Exceeded($"{what} needs {bytes} bytes, which would materialize more than {_materializedLimit} bytes for this file "
                + $"(limit {nameof(ReadBudget.MaterializedBytesFloor)} + {nameof(ReadBudget.MaterializedBytesPerFileByte)} × file size = {_materializedLimit})");
        _materialized += bytes;
    }

    /// <summary>Checks the clock now and then; call it once per unit of work.</summary>
    public void Tick()
    {
        if (++_ticks % TimeCheckInterval == 0) CheckTime();
    }

    public void CheckTime()
    {
        if (_clock.Elapsed > Budget.MaxTime)
            throw Exceeded($"reading took longer than {Budget.MaxTime} (limit {nameof(ReadBudget.MaxTime)} = {Budget.MaxTime})");
    }

    public CheckpointFormatException Exceeded(string detail) => new(Source, Check, detail);
}
