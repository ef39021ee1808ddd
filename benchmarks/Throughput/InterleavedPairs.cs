using System.Diagnostics;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// Runs every group's operation and references once per repetition, interleaved (never all of ours
/// then all references), and alternates which goes first so that neither side always gets the
/// warmer cache or the quieter disk.
/// </summary>
public static class InterleavedPairs
{
    public static async Task<IReadOnlyList<PairedTimings>> RunAsync(IReadOnlyList<PairGroup> groups, int repeat, Action<string> say)
    {
        var ours = groups.ToDictionary(g => g, _ => new List<double>());
        var references = groups.SelectMany(g => g.Rows).ToDictionary(r => r.Row, _ => new List<double>());
        for (var rep = 0; rep < repeat; rep++)
        {
            foreach (var group in groups)
            {
                var steps = new List<(string Name, Func<Task<double>> Run, List<double> Into)> { ("ours", group.Ours, ours[group]) };
                steps.AddRange(group.Rows.Select(r => (r.Reference, r.Run, references[r.Row])));
                if (rep % 2 == 1) steps.Reverse();
                foreach (var (name, run, into) in steps)
                {
                    var seconds = await run();
                    into.Add(seconds);
                    say($"rep {rep + 1}/{repeat} {group.What}: {name} {seconds:0.000} s");
                }
            }
        }
        return groups.SelectMany(g => g.Rows.Select(r => new PairedTimings(r.Row, r.Reference, ours[g], references[r.Row]))).ToList();
    }

    /// <summary>Wall-clock seconds of <paramref name="run"/>.</summary>
    public static async Task<double> Time(Func<Task> run)
    {
        var clock = Stopwatch.StartNew();
        await run();
        return clock.Elapsed.TotalSeconds;
    }

    public static Task<double> Time(Action run) => Time(() =>
    {
        run();
        return Task.CompletedTask;
    });
}
