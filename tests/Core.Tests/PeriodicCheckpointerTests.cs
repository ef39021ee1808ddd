using Checkpointing.Abstractions;
using CsCheck;

namespace Checkpointing.Core.Tests;

/// <summary>Ports of fvcore's TestPeriodicCheckpointer (each ran for a plain and a DataParallel model; see CheckpointerTests on DataParallel).</summary>
public sealed class PeriodicCheckpointerTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private bool Exists(string name) => File.Exists(Path.Combine(_dir.Path, name, "manifest.json"));

    [Fact]
    public void Saves_every_period()
    {
        var checkpointer = new Checkpointer(Models.Small(), _dir.Path, saveToDisk: true);
        var periodic = new PeriodicCheckpointer(checkpointer, 10, 99);
        for (var iteration = 0; iteration < 100; iteration++)
        {
            periodic.Step(iteration);
            var name = $"model_{iteration:D7}";
            Assert.Equal((iteration + 1) % 10 == 0, Exists(name));
        }
        Assert.True(Exists("model_final"));
    }

    [Fact]
    public void Keeps_only_max_to_keep_across_two_passes()
    {
        var checkpointer = new Checkpointer(Models.Small(), _dir.Path, saveToDisk: true);
        var periodic = new PeriodicCheckpointer(checkpointer, 10, 99, maxToKeep: 3);
        for (var pass = 0; pass < 2; pass++)
        {
            var names = new List<string>();
            for (var iteration = 0; iteration < 100; iteration++)
            {
                periodic.Step(iteration);
                if ((iteration + 1) % 10 == 0) names.Add($"model_{iteration:D7}");
            }
            foreach (var gone in names[..^3]) Assert.False(Exists(gone), gone);
            foreach (var kept in names[^3..]) Assert.True(Exists(kept), kept);
            Assert.True(Exists("model_final"));
        }
    }

    [Fact]
    public void Final_is_saved_from_max_iter_minus_one_and_records_the_iteration()
    {
        var checkpointer = new Checkpointer(Models.Small(), _dir.Path);
        var periodic = new PeriodicCheckpointer(checkpointer, 1000, maxIter: 5, filePrefix: "net");
        for (var i = 0; i < 4; i++) periodic.Step(i);
        Assert.False(Exists("net_final"));
        periodic.Step(4, new Dictionary<string, object?> { ["loss"] = 0.25 });
        Assert.True(Exists("net_final"));
        Assert.Equal(Path.Combine(_dir.Path, "net_final"), checkpointer.GetCheckpointFile());
        var extra = new Checkpointer(Models.Small()).Load(checkpointer.GetCheckpointFile());
        Assert.Equal(4L, extra["iteration"]);
        Assert.Equal(0.25, extra["loss"]);
    }

    [Fact]
    public void Save_outside_the_schedule_tags_but_is_not_subject_to_retention()
    {
        var checkpointer = new Checkpointer(Models.Small(), _dir.Path);
        var periodic = new PeriodicCheckpointer(checkpointer, 1, maxToKeep: 1);
        periodic.Save("preempted");
        periodic.Step(0);
        periodic.Step(1);
        Assert.True(Exists("preempted"));
        Assert.False(Exists("model_0000000"));
        Assert.True(Exists("model_0000001"));
    }

    [Fact]
    public void Retention_counts_checkpoints_left_by_an_earlier_process()
    {
        var first = new PeriodicCheckpointer(new Checkpointer(Models.Small(), _dir.Path), 1, maxToKeep: 2);
        for (var i = 0; i < 3; i++) first.Step(i);
        var second = new PeriodicCheckpointer(new Checkpointer(Models.Small(), _dir.Path), 1, maxToKeep: 2);
        Assert.Equal(["model_0000001", "model_0000002"], second.RecentCheckpoints);
        second.Step(3);
        Assert.False(Exists("model_0000001"));
        Assert.True(Exists("model_0000002"));
        Assert.True(Exists("model_0000003"));
    }

    [Theory]
    [InlineData(0, null, null, "model")]
    [InlineData(1, 0L, null, "model")]
    [InlineData(1, null, 0, "model")]
    [InlineData(1, null, null, "../evil")]
    public void Invalid_policies_are_refused(int period, long? maxIter, int? maxToKeep, string prefix)
    {
        Assert.ThrowsAny<ArgumentException>(() => new PeriodicCheckpointer(new Checkpointer(Models.Small(), _dir.Path), period, maxIter, maxToKeep, prefix));
    }

    [Fact]
    public void Periodic_names_are_the_prefix_an_underscore_and_at_least_seven_ascii_digits() =>
        Gen.Select(Gen.OneOf(Gen.Const("model"), Gen.Const("m"), Gen.Const("ckpt_run")), Gen.String[Gen.Char["0123456789_a\u0663"], 0, 24]).Sample((prefix, tail) =>
        {
            var policy = new PeriodicPolicy(1, FilePrefix: prefix);
            var name = $"{prefix}_{tail}";
            var reference = new System.Text.RegularExpressions.Regex($"^{System.Text.RegularExpressions.Regex.Escape(prefix)}_[0-9]{{7,}}$");
            Assert.Equal(reference.IsMatch(name), policy.IsPeriodicName(name));
            Assert.False(policy.IsPeriodicName(tail)); // no prefix
            if (!policy.IsPeriodicName(name)) return;
            var iteration = System.Numerics.BigInteger.Parse(tail, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(iteration > long.MaxValue ? long.MaxValue : (long)iteration, policy.IterationOfPeriodicName(name)); // past long: last in order, never a crash
        });
}
