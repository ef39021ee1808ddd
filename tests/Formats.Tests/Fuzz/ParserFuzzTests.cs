using Checkpointing.TestSupport;
using System.Globalization;
using CsCheck;
using Xunit.Abstractions;

namespace Checkpointing.Formats.Tests.Fuzz;

/// <summary>
/// CsCheck-driven mutation of real files (<see cref="FuzzSeeds"/>) against each parser of untrusted
/// bytes. Every input must parse or fail with a documented exception (<see cref="FuzzTargets.DocumentedExceptions"/>),
/// finish well within a hang deadline and allocate a bounded amount. The whole suite runs for
/// CKPT_FUZZ_SECONDS (default 45), shared equally by the targets.
/// </summary>
public sealed class ParserFuzzTests(FuzzSeeds seeds, ITestOutputHelper output) : IClassFixture<FuzzSeeds>
{
    private const int TargetCount = 7;
    private const int DefaultSuiteSeconds = 45;

    /// <summary>Far above any sane parse of these small inputs: it catches hangs, it does not time parsing.</summary>
    private static readonly TimeSpan HangDeadline = TimeSpan.FromSeconds(30);

    /// <summary>Allocation bound per input: the read budget's 64 MiB materialization floor plus bookkeeping.</summary>
    private const long MaxAllocatedBytes = 256L << 20;

    [Fact]
    public void Pickle_vm_survives_mutated_pickles() => Fuzz(FuzzTargets.PickleMachine, seeds.Pickles, rezip: false);

    [Fact]
    public void Pth_reader_survives_mutated_zip_bytes() => Fuzz(FuzzTargets.PthZip, seeds.PthFiles, rezip: false);

    /// <summary>Mutates the records inside a .pth and rebuilds a valid zip, so that the pickle and storages are reached past the CRC checks.</summary>
    [Fact]
    public void Pth_reader_survives_mutated_records_in_a_valid_zip() => Fuzz(FuzzTargets.PthZip, seeds.PthFiles, rezip: true);

    [Fact]
    public void Safetensors_header_parser_survives_mutated_shards() => Fuzz(FuzzTargets.SafetensorsHeaderParser, seeds.SafetensorsShards, rezip: false);

    [Fact]
    public void Manifest_parser_survives_mutated_manifests() => Fuzz(FuzzTargets.ManifestParser, seeds.Manifests, rezip: false);

    [Fact]
    public void Bytegroup_decoder_survives_mutated_encodings() => Fuzz(FuzzTargets.BytegroupDecoder, seeds.Encoded, rezip: false);

    [Fact]
    public void Block_map_parser_survives_mutated_entries() => Fuzz(FuzzTargets.BlockMapParser, seeds.BlockEntries, rezip: false);

    private static int SecondsPerTarget()
    {
        var configured = Environment.GetEnvironmentVariable("CKPT_FUZZ_SECONDS");
        var total = int.TryParse(configured, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) && seconds > 0 ? seconds : DefaultSuiteSeconds;
        return Math.Max(1, total / TargetCount);
    }

    private void Fuzz(FuzzTarget target, IReadOnlyList<byte[]> seedFiles, bool rezip)
    {
        Assert.NotEmpty(seedFiles);
        var stats = new FuzzStats();
        var gen = Gen.Select(Gen.Int[0, seedFiles.Count - 1], Mutation.Gen.Array[1, 6], Gen.Int[0, int.MaxValue]);
        gen.Sample(
            (seedIndex, mutations, record) => RunOne(target, Mutate(seedFiles, seedIndex, mutations, record, rezip), stats),
            writeLine: output.WriteLine,
            time: SecondsPerTarget(),
            threads: 1,
            print: t => $"seed {t.Item1}, record {t.Item3}, mutations [{string.Join(", ", t.Item2.Select(m => m.ToString()))}]");

        output.WriteLine($"{target.Name}: {stats.Inputs} inputs, {stats.Accepted} accepted, {stats.Refused} refused; "
            + $"most allocated by one input {stats.MaxAllocated / 1024} KiB; refusals by check: {string.Join(", ", stats.ByCheck.OrderByDescending(p => p.Value).Select(p => $"{p.Key} {p.Value}"))}");
        Assert.True(stats.Inputs > 0);
    }

    private static byte[] Mutate(IReadOnlyList<byte[]> seedFiles, int seedIndex, Mutation[] mutations, int record, bool rezip)
    {
        if (!rezip) return mutations.Aggregate(seedFiles[seedIndex], (bytes, m) => m.Apply(bytes, seedFiles));
        var records = FuzzTargets.Records(seedFiles[seedIndex]);
        var chosen = record % records.Count;
        var donors = records.Select(r => r.Data).ToList();
        records[chosen] = (records[chosen].Name, mutations.Aggregate(records[chosen].Data, (bytes, m) => m.Apply(bytes, donors)));
        return HostileFiles.StoredZip(records);
    }

    /// <summary>Parses on its own thread: a hang fails the test instead of stalling it, and allocation is measured for this input alone.</summary>
    private static void RunOne(FuzzTarget target, byte[] input, FuzzStats stats)
    {
        Exception? escaped = null;
        long allocated = 0;
        var worker = new Thread(() =>
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                target.Parse(input);
            }
            catch (Exception e)
            {
                escaped = e;
            }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }) { IsBackground = true };
        worker.Start();
        if (!worker.Join(HangDeadline))
            Assert.Fail($"{target.Name} did not finish a {input.Length}-byte input within {HangDeadline} (input: {Convert.ToBase64String(input.AsSpan(0, Math.Min(input.Length, 4096)))})");
        stats.Record(escaped, allocated);
        if (escaped is not null && !FuzzTargets.DocumentedExceptions.Contains(escaped.GetType()))
            Assert.Fail($"{target.Name} threw an undocumented {escaped.GetType().FullName} for a {input.Length}-byte input: {escaped}");
        Assert.True(allocated <= MaxAllocatedBytes, $"{target.Name} allocated {allocated} bytes for a {input.Length}-byte input");
    }

    private sealed class FuzzStats
    {
        public long Inputs { get; private set; }
        public long Accepted { get; private set; }
        public long Refused { get; private set; }
        public long MaxAllocated { get; private set; }
        public Dictionary<string, long> ByCheck { get; } = new(StringComparer.Ordinal);

        public void Record(Exception? escaped, long allocated)
        {
            Inputs++;
            MaxAllocated = Math.Max(MaxAllocated, allocated);
            if (escaped is null)
            {
                Accepted++;
                return;
            }
            Refused++;
            var check = escaped is CheckpointFormatException format ? format.Check : escaped.GetType().Name;
            ByCheck[check] = ByCheck.GetValueOrDefault(check) + 1;
        }
    }
}
