using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;

namespace Checkpointing.Grains.Tests;

/// <summary>
/// The bytes of a persisted run state and of a shard report, as Orleans' serializer wrote them before the checkpoint
/// model left the Orleans contract project (the model types now travel through surrogates). Silos of either build
/// read each other's messages and state: these tests fail if a field id, a type or the encoding changes.
/// </summary>
public sealed class WireFormatTests
{
    private static readonly DateTimeOffset At = new(2026, 12, 7, 6, 0, 0, TimeSpan.Zero);

    internal static RunState SampleState() => new()
    {
        Created = true,
        Policy = new PeriodicPolicy(50, MaxIter: 1000, MaxToKeep: 3, FilePrefix: "net"),
        Epoch = 4,
        LastCheckpoint = "net_0000049",
        Catalog = [new CheckpointRecord("net_0000049", 49, 4096, 2, At, "net_0000049/manifest.json", "a1", 4, ["net_0000024"])],
        Pending =
        {
            ["net_0000099"] = new PendingCheckpoint
            {
                Name = "net_0000099", AttemptId = "a2", Epoch = 4, WorldSize = 2, Iteration = 99, StartedUtc = At,
                LastProgressUtc = At.AddSeconds(3), Tensors = new TensorListSummary(2, 64, "ab"),
            },
        },
        CheckpointRequest = new CheckpointRequest("r1", "preempt", At, 120),
        CreatedUtc = At,
        Deletions = [new PendingDeletion("net_0000009", "a0", 2, true, ["net_0000009/a0-0.safetensors"])],
        Held = [new HeldShards("net_0000024", "a9", 512, ["a9-1.safetensors"])],
        ArchiveGone = ["net_0000004/a3"],
    };

    internal static ShardReport SampleReport() => new(
        "net_0000099", "a2", 1, 4, new ShardInfo("a2-1.safetensors", 640, "crc64:00000000000000ff"),
        new Dictionary<string, TensorInfo>
        {
            ["w"] = new(0, "F32", [2, 4], [0, 32], "xxh128:00"),
            ["emb@0,0"] = new(1, "F16", [1, 2], [32, 36]),
            ["enc"] = new(0, "BF16", [4, 4], [36, 50], "xxh128:01", "bytegroup", 32),
        },
        "{\"w\":{\"$tensor\":\"w\"}}",
        [new ShardInfo("a9-1.safetensors", 512, "crc64:0000000000000001", "net_0000024")],
        0.25,
        new Dictionary<string, ShardedTensorInfo>
        {
            ["emb"] = new("F16", [2, 2], [new TensorChunk("emb@0,0", [0, 0], null), new TensorChunk("emb@flat2", null, 2)]),
        });

    private static Serializer NewSerializer() =>
        new ServiceCollection().AddSerializer(builder => builder.AddAssembly(typeof(RunState).Assembly)).BuildServiceProvider().GetRequiredService<Serializer>();

    private static string Golden(string name) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Golden", name)).Trim();

    /// <remarks>run-state.b64 is what builds before the memory tier wrote (its policy had no memory period), shard-report.b64
    /// what builds before compression wrote (its tensors had no encoding); this build writes run-state-2.b64 and
    /// shard-report-2.b64, and reads all four (<see cref="A_run_state_written_by_an_earlier_build_reads_back_whole"/>,
    /// <see cref="A_shard_report_written_by_an_earlier_build_reads_back_whole"/>).</remarks>
    [Theory]
    [InlineData("run-state-2.b64")]
    [InlineData("shard-report-2.b64")]
    public void Serializing_the_sample_gives_the_bytes_earlier_builds_wrote(string golden)
    {
        var serializer = NewSerializer();
        var bytes = golden == "run-state-2.b64" ? serializer.SerializeToArray(SampleState()) : serializer.SerializeToArray(SampleReport());
        if (Environment.GetEnvironmentVariable("CKPT_WRITE_GOLDEN") is { } folder) File.WriteAllText(Path.Combine(folder, golden), Convert.ToBase64String(bytes));
        Assert.Equal(Golden(golden), Convert.ToBase64String(bytes));
    }

    [Fact]
    public void A_memory_period_a_memory_checkpoint_and_a_resume_decision_survive_the_state_round_trip()
    {
        var serializer = NewSerializer();
        var state = SampleState();
        state.Policy = state.Policy with { MemoryPeriod = 10 };
        state.Memory = new MemoryCheckpointRecord("memory_0000019", 19, 4, 2, At, [new RankHolders(0, 64, [new HolderRef("http://127.0.0.1:7400", "a")]),
            new RankHolders(1, 64, [new HolderRef("http://127.0.0.1:7401", "b"), new HolderRef("http://127.0.0.1:7400", "a")])], Unusable: true);
        state.Resume = new ResumeDecisionRecord(4, new ResumeDecision(true, false, "memory_0000019", "rank 1 could not fetch it"));

        var read = serializer.Deserialize<RunState>(serializer.SerializeToArray(state))!;

        Assert.Equal(10, read.Policy.MemoryPeriod);
        Assert.Equal(state.Memory with { Ranks = [] }, read.Memory! with { Ranks = [] });
        Assert.Equal(state.Memory.Ranks.Select(r => (r.Rank, r.Bytes, string.Join(",", r.Holders))), read.Memory!.Ranks.Select(r => (r.Rank, r.Bytes, string.Join(",", r.Holders))));
        Assert.Equal(state.Resume, read.Resume);
    }

    [Theory]
    [InlineData("run-state.b64")]
    [InlineData("run-state-2.b64")]
    public void A_run_state_written_by_an_earlier_build_reads_back_whole(string golden)
    {
        var state = NewSerializer().Deserialize<RunState>(Convert.FromBase64String(Golden(golden)))!;
        var sample = SampleState();
        Assert.Equal(sample.Policy, state.Policy);
        Assert.Equal(sample.Catalog[0] with { Reuses = null }, state.Catalog[0] with { Reuses = null });
        Assert.Equal(sample.Catalog[0].Reuses, state.Catalog[0].Reuses);
        Assert.Equal(sample.Pending["net_0000099"].Tensors, state.Pending["net_0000099"].Tensors);
        Assert.Equal(sample.CheckpointRequest, state.CheckpointRequest);
        Assert.Equal(sample.Deletions[0].Keys, state.Deletions[0].Keys);
        Assert.Equal(sample.Held[0].Paths, state.Held[0].Paths);
        Assert.Equal(sample.ArchiveGone, state.ArchiveGone);
    }

    [Theory]
    [InlineData("shard-report.b64")]
    [InlineData("shard-report-2.b64")]
    public void A_shard_report_written_by_an_earlier_build_reads_back_whole(string golden)
    {
        var report = NewSerializer().Deserialize<ShardReport>(Convert.FromBase64String(Golden(golden)))!;
        var sample = SampleReport();
        Assert.Equal(sample.Shard, report.Shard);
        Assert.Equal(sample.Reused![0], report.Reused![0]);
        Assert.Equal(sample.Tensors["w"].Shape, report.Tensors["w"].Shape);
        Assert.Equal(sample.Tensors["w"].Hash, report.Tensors["w"].Hash);
        Assert.Equal(sample.Tensors["emb@0,0"].DataOffsets, report.Tensors["emb@0,0"].DataOffsets);
        var chunks = report.Sharded!["emb"].Chunks;
        Assert.Equal([0L, 0L], chunks[0].Offsets!);
        Assert.Equal(2, chunks[1].FlatOffset);
        Assert.Equal(sample.StateJson, report.StateJson);
        Assert.Null(report.Tensors["w"].Encoding);
        if (golden == "shard-report-2.b64") Assert.Equal(("bytegroup", 32L), (report.Tensors["enc"].Encoding, report.Tensors["enc"].RawLength));
    }
}
