using Checkpointing.Contracts;
using CsCheck;

namespace Checkpointing.Grains.Tests;

/// <summary>
/// The catalog split between the run's state and its archive reads exactly like the single list it replaced, after any
/// sequence of commits, replacements, removals and archive moves, and after a crash at any point, including between
/// the archive's write and the run state's.
/// </summary>
public sealed class RunCatalogTests
{
    private abstract record Step;
    private sealed record Commit(int Name, long? Iteration) : Step;
    private sealed record RemoveAt(int Index) : Step;
    /// <summary>An archive move whose archive write may fail (before or after it landed) or whose run-state write may fail; then the grain may restart or go on.</summary>
    private sealed record Seal(WriteFault Archive, bool RunStateFails, bool Restart) : Step;
    private sealed record Crash : Step;

    private static readonly Gen<Step> AnyStep = Gen.Frequency(
        (12, Gen.Select(Gen.Int[0, 60], Gen.Long[0, 30], Gen.Int[0, 9], (name, iteration, unnumbered) => (Step)new Commit(name, unnumbered == 0 ? null : iteration))),
        (3, Gen.Int[0, 1000].Select(index => (Step)new RemoveAt(index))),
        (3, Gen.Select(Gen.Enum<WriteFault>(), Gen.Int[0, 3], Gen.Bool, (archive, run, restart) => (Step)new Seal(archive, run == 0, restart))),
        (1, Gen.Const((Step)new Crash())));

    [Fact]
    public Task The_catalog_reads_like_one_ordered_list_through_archive_moves_and_crashes() =>
        Gen.Select(Gen.Int[4, 24], AnyStep.List[1, 400]).SampleAsync(async (tailLimit, steps) =>
        {
            var expected = new List<CheckpointRecord>(); // the catalog as one list, as the run's state held it before the archive
            var run = new DurableState<RunState>(CopyOf);
            var archive = new DurableState<CatalogArchive>(a => new CatalogArchive { Entries = [.. a.Entries] });
            var catalog = new RunCatalog(run, archive, tailLimit);
            catalog.Restore();
            var attempts = 0;
            foreach (var step in steps)
            {
                switch (step)
                {
                    case Commit commit:
                        var name = $"model_{commit.Name}";
                        var record = new CheckpointRecord(name, commit.Iteration, 1000 + commit.Name, 1, DateTimeOffset.UnixEpoch, $"{name}/manifest.json", $"{++attempts:x8}", 1);
                        if (catalog.Find(name) is { } replaced) catalog.Remove(replaced);
                        catalog.Insert(record);
                        expected.RemoveAll(c => c.Name == name);
                        expected.Insert(expected.FindLastIndex(c => (c.Iteration ?? long.MaxValue) <= (commit.Iteration ?? long.MaxValue)) + 1, record);
                        await run.WriteStateAsync();
                        break;
                    case RemoveAt remove when expected.Count > 0:
                        var gone = expected[remove.Index % expected.Count];
                        catalog.Remove(gone);
                        expected.Remove(gone);
                        await run.WriteStateAsync();
                        break;
                    case Seal seal:
                        archive.Fault = seal.Archive;
                        run.Fault = seal.RunStateFails ? WriteFault.Throw : WriteFault.None;
                        try
                        {
                            await catalog.SealAsync(run.WriteStateAsync);
                            Assert.InRange(run.Durable.Catalog.Count, 0, catalog.TailKept);
                            Assert.Empty(run.Durable.ArchiveGone);
                        }
                        catch (IOException) when (seal.Archive != WriteFault.None || seal.RunStateFails)
                        {
                            // E.g. the archive holds the moved entries and the run's state still lists them.
                            if (seal.Restart) catalog = await Restarted(run, archive, tailLimit);
                        }
                        archive.Fault = run.Fault = WriteFault.None;
                        break;
                    case Crash:
                        catalog = await Restarted(run, archive, tailLimit);
                        break;
                }
                Assert.Equal(Keys(expected), Keys(catalog.Entries));
                Assert.Equal(expected.Sum(c => c.Bytes), catalog.Bytes);
                Assert.All(expected, c => Assert.Same(c, catalog.Find(c.Name)));
            }
            Assert.Equal(Keys(expected), Keys((await Restarted(run, archive, tailLimit)).Entries));
        }, iter: 300);

    [Fact]
    public async Task A_seal_leaves_the_newest_entries_in_the_run_state_and_forgets_the_removed_ones()
    {
        var run = new DurableState<RunState>(CopyOf);
        var archive = new DurableState<CatalogArchive>(a => new CatalogArchive { Entries = [.. a.Entries] });
        var catalog = new RunCatalog(run, archive);
        catalog.Restore();
        var records = Enumerable.Range(0, catalog.TailLimit + 1)
            .Select(i => new CheckpointRecord($"model_{i:D7}", i, 1, 1, DateTimeOffset.UnixEpoch, "m", $"{i:x8}", 1)).ToList();
        foreach (var record in records) catalog.Insert(record);
        Assert.True(catalog.SealDue);

        await catalog.SealAsync(run.WriteStateAsync);
        Assert.False(catalog.SealDue);
        Assert.Equal(Keys(records.TakeLast(catalog.TailKept)), Keys(run.Durable.Catalog));
        Assert.Equal(Keys(records.SkipLast(catalog.TailKept)), Keys(archive.Durable.Entries));

        catalog.Remove(records[0]); // archived: recorded as gone in the run's state
        await run.WriteStateAsync();
        Assert.Equal([RunCatalog.KeyOf(records[0])], run.Durable.ArchiveGone);
        Assert.Equal(Keys(records.Skip(1)), Keys((await Restarted(run, archive, catalog.TailLimit)).Entries));

        await catalog.SealAsync(run.WriteStateAsync); // the archive is rewritten without it
        Assert.Empty(run.Durable.ArchiveGone);
        Assert.DoesNotContain(RunCatalog.KeyOf(records[0]), Keys(archive.Durable.Entries));
    }

    private static async Task<RunCatalog> Restarted(DurableState<RunState> run, DurableState<CatalogArchive> archive, int tailLimit)
    {
        await run.ReadStateAsync();
        await archive.ReadStateAsync();
        var catalog = new RunCatalog(run, archive, tailLimit);
        catalog.Restore();
        return catalog;
    }

    private static RunState CopyOf(RunState s) => new() { Catalog = [.. s.Catalog], ArchiveGone = [.. s.ArchiveGone] };

    private static List<string> Keys(IEnumerable<CheckpointRecord> records) => records.Select(r => $"{RunCatalog.KeyOf(r)}@{r.Iteration}").ToList();

    public enum WriteFault { None, Throw, LandThenThrow }

    /// <summary>A grain state whose writes keep a copy (what storage holds) and can be made to fail, before or after the write landed.</summary>
    private sealed class DurableState<T>(Func<T, T> copy) : IPersistentState<T> where T : new()
    {
        public T State { get; set; } = new();
        public T Durable { get; private set; } = new();
        public WriteFault Fault { get; set; }
        public string? Etag => null;
        public bool RecordExists => true;

        public Task WriteStateAsync()
        {
            if (Fault == WriteFault.Throw) throw new IOException("the write did not reach storage");
            Durable = copy(State);
            if (Fault == WriteFault.LandThenThrow) throw new IOException("the write landed; its answer was lost");
            return Task.CompletedTask;
        }

        public Task ReadStateAsync()
        {
            State = copy(Durable);
            return Task.CompletedTask;
        }

        public Task ClearStateAsync()
        {
            State = new T();
            Durable = new T();
            return Task.CompletedTask;
        }
    }
}
