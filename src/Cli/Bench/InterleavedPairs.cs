using System.Diagnostics;

namespace Checkpointing.Cli.Bench;

/// <summary>One of our operations and the references it is compared with, each a timed run returning seconds.</summary>
/// <param name="Rows">Row name, reference name, reference run: each row is "ours against this reference".</param>
public sealed record PairGroup(string What, Func<Task<double>> Ours, IReadOnlyList<(string Row, string Reference, Func<Task<double>> Run)> Rows);

/// <summary>Timings of one row: ours and its reference, one sample of each per repetition, taken next to each other.</summary>
public sealed record PairedTimings(string Row, string Reference, IReadOnlyList<double> Ours, IReadOnlyList<double> ReferenceSeconds)
{
    public double OursMedian => Median(Ours);
    public double ReferenceMedian => Median(ReferenceSeconds);

    /// <summary>Ratio of the medians.</summary>
    public double Ratio => OursMedian / ReferenceMedian;

    /// <summary>Median of the per-repetition ratios: each pair ran back to back, so this cancels slow drifts of the disk.</summary>
    public double PairRatioMedian => Median(Ours.Zip(ReferenceSeconds, (a, b) => a / b).ToList());

    public static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToList();
        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}

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
