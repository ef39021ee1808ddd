using System.Security.Cryptography;
using Checkpointing.Formats;
using Checkpointing.Storage;

namespace Checkpointing.Cli.Tests;

/// <summary>
/// Block-mapped checkpoints from the command line (docs/compression.md#block-reuse): <c>ckpt inspect</c> and <c>ckpt verify</c>
/// read one whose table references an earlier checkpoint's blocks; <c>ckpt compact --decompress</c> makes it self-contained
/// plain shards that the official safetensors reader (scripts/peers.sh's chroot) opens, bit for bit, with the earlier
/// checkpoint gone.
/// </summary>
[Collection(nameof(CliCollection))]
public sealed class BlockReuseCliTests : IDisposable
{
    /// <summary>Inside the chroot: the SHA-256 of the bytes of every tensor of every shard under the folder, by key.</summary>
    private const string Digests = """
        import sys, glob, json, hashlib, torch
        from safetensors import safe_open
        found = {}
        for shard in sorted(glob.glob(sys.argv[1] + '/*.safetensors')):
            with safe_open(shard, 'pt') as f:
                for key in f.keys():
                    found[key] = {'sha256': hashlib.sha256(f.get_tensor(key).contiguous().view(torch.uint8).numpy().tobytes()).hexdigest(), 'format': (f.metadata() or {}).get('format')}
        print(json.dumps(found))
        """;

    private readonly string _dir = PeersChroot.NewFolder("ckpt-blocks");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_block_mapped_checkpoint_inspects_and_verifies_and_after_compact_decompress_the_official_reader_opens_it_without_its_earlier_checkpoint()
    {
        PeersChroot.RequireReady();
        var store = new FileSystemStore(_dir);
        var table = HostTensor.Allocate(TensorDType.F32, [8192, 32]);
        new Random(1).NextBytes(table.Data);
        var reuse = new BlockReuse { MinBytes = 64 << 10, BlockBytes = 128 };
        foreach (var name in new[] { "c0", "c1" })
        {
            if (name == "c1") new Random(2).NextBytes(table.Data.AsSpan(700 * 128, 3 * 128)); // three rows change
            var committed = (await RunCheckpoints.ReadCommittedAsync(store, "")).Committed;
            await NativeCheckpointWriter.WriteAsync(store, name, new CheckpointIdentity("cli", name, 1), new OrderedDictionary<string, object?> { ["model"] = new OrderedDictionary<string, object?> { ["table"] = table } },
                v => v as HostTensor, new NativeWriteOptions { ReuseFrom = committed, BlockReuse = reuse });
        }

        var inspected = await CliRunner.Ckpt.InProcess("inspect", Path.Combine(_dir, "c1"), "--json");
        Assert.True(inspected.ExitCode == 0, inspected.Error);
        var entry = inspected.Json["tensors"]!.AsArray().Single(t => (string)t!["key"]! == "model/table")!;
        Assert.Equal("blocks", (string?)entry["encoding"]);
        Assert.True((long)entry["stored_bytes"]! < table.Data.Length / 100, entry.ToJsonString());
        Assert.Contains("c0", inspected.Json["shards"]!.AsArray().Select(s => (string?)s!["reused_from"]));
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("verify", Path.Combine(_dir, "c1"))).ExitCode);

        var compacted = await CliRunner.Ckpt.InProcess("compact", Path.Combine(_dir, "c1"), "--decompress", "--json");
        Assert.True(compacted.ExitCode == 0, compacted.Error);
        Assert.True((bool)compacted.Json["compacted"]!);
        Directory.Delete(Path.Combine(_dir, "c0"), recursive: true);
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("verify", Path.Combine(_dir, "c1"))).ExitCode);
        var read = System.Text.Json.Nodes.JsonNode.Parse(PeersChroot.Python(Digests, Path.Combine(_dir, "c1")))!["model/table"]!;
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(table.Data)), (string?)read["sha256"]);
        Assert.Equal("pt", (string?)read["format"]);
    }
}
