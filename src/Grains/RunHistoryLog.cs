using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Grains;

/// <summary>
/// The run's history (saves and loads with their timings), persisted apart from the run's state and
/// written in batches: it is what operators look at, not what resume or retention depend on, and
/// carried in the run's state it made every commit re-serialize up to 200 entries. Written once
/// <see cref="FlushEvery"/> entries are waiting, when the oldest waiting entry is older than the
/// delay the sweep passes, and when the activation ends; a silo that crashes loses at most the
/// entries waiting then (fewer than <see cref="FlushEvery"/>, younger than that delay).
/// </summary>
internal sealed class RunHistoryLog(IPersistentState<RunHistory> state, ILogger logger, RunId run)
{
    public const int MaxEntries = 200;
    public const int FlushEvery = 32;

    private int _waiting;
    private DateTimeOffset _oldestWaitingUtc;
    private Task? _flushing;

    public IReadOnlyList<HistoryEntry> Entries => state.State.Entries;

    /// <summary>Adds an entry; starts a write in the background once <see cref="FlushEvery"/> are waiting.</summary>
    public void Add(HistoryEntry entry, DateTimeOffset now)
    {
        state.State.Entries.Add(entry);
        KeepNewest();
        if (_waiting++ == 0) _oldestWaitingUtc = now;
        if (_waiting >= FlushEvery) _ = FlushAsync();
    }

    /// <summary>A rank loaded a checkpoint (a resume): refused when the report is not one a rank could send.</summary>
    public void AddLoad(LoadReport load, DateTimeOffset now)
    {
        CheckpointName.Validate(load.Name);
        if (load.Rank < 0 || load.Seconds < 0 || load.Bytes < 0 || !double.IsFinite(load.Seconds)) throw new RunRefusedException("A load report needs a rank, seconds and bytes that are not negative.");
        Add(new HistoryEntry(HistoryEntry.Load, load.Name, now, load.Bytes, load.Seconds, load.Epoch, Rank: load.Rank), now);
    }

    /// <summary>
    /// Takes over the entries a run's state carried before the history had a state of its own, and writes
    /// them before the run's next state write drops them.
    /// </summary>
    public async Task AdoptAsync(List<HistoryEntry> legacy)
    {
        if (legacy.Count == 0) return;
        state.State.Entries.InsertRange(0, legacy);
        KeepNewest();
        await state.WriteStateAsync();
        legacy.Clear();
    }

    private void KeepNewest()
    {
        var entries = state.State.Entries;
        if (entries.Count > MaxEntries) entries.RemoveRange(0, entries.Count - MaxEntries);
    }

    /// <summary>Writes the waiting entries if the oldest has waited <paramref name="maxDelay"/> (or at all, when null).</summary>
    public Task FlushIfDueAsync(DateTimeOffset now, TimeSpan? maxDelay) =>
        _waiting > 0 && (maxDelay is not { } delay || now - _oldestWaitingUtc >= delay) ? FlushAsync() : Task.CompletedTask;

    /// <summary>One write at a time (the storage's ETag allows no overlap); a write that fails is logged and retried by the next flush.</summary>
    private Task FlushAsync() => _flushing is { IsCompleted: false } running ? running : _flushing = WriteAsync();

    private async Task WriteAsync()
    {
        var writing = _waiting;
        try
        {
            await state.WriteStateAsync();
            _waiting -= writing;
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Run {Run}: writing its history failed; {Count} entries wait for the next try", run, _waiting);
        }
    }

    public async Task ClearAsync()
    {
        if (_flushing is { } flushing) await flushing;
        await state.ClearStateAsync();
        state.State = new RunHistory();
        _waiting = 0;
    }
}
