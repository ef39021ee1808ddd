using System.Text.Json.Nodes;

namespace Checkpointing.Cli.Tests;

/// <summary>
/// Compressed checkpoints from the command line (docs/compression.md): <c>ckpt convert --compress</c> writes one,
/// <c>ckpt verify</c> and <c>ckpt inspect</c> read it, and after <c>ckpt compact --decompress</c> the official safetensors
/// reader (PyTorch 2 and safetensors in scripts/peers.sh's chroot) opens every shard and finds the source's tensors, bit for bit.
/// </summary>
[Collection(nameof(CliCollection))]
public sealed class CompressedCheckpointCliTests : IDisposable
{
    /// <summary>Inside the chroot: weights-like tensors in three float dtypes and one that does not compress, saved by the official writer.</summary>
    private const string WriteSource = """
        import sys, torch
        from safetensors.torch import save_file
        torch.manual_seed(3)
        tensors = {
            'fc.weight': (torch.randn(512, 256) * 0.02).to(torch.bfloat16),
            'fc.bias': torch.randn(512) * 0.01,
            'proj.weight': (torch.randn(256, 256) * 0.05).to(torch.float16),
            'head.weight': torch.randn(64, 256) * 0.02,
            'noise': torch.randint(0, 256, (4096,), dtype=torch.uint8),
        }
        save_file(tensors, sys.argv[1], metadata={'format': 'pt'})
        """;

    /// <summary>Inside the chroot: every shard of the folder opened by the official reader; prints each source tensor's key and whether a shard holds it equal.</summary>
    private const string Compare = """
        import sys, glob, json, torch
        from safetensors import safe_open
        from safetensors.torch import load_file
        source = load_file(sys.argv[1])
        found = {}
        for shard in sorted(glob.glob(sys.argv[2] + '/*/*.safetensors')):
            with safe_open(shard, 'pt') as f:
                meta = f.metadata() or {}
                for key in f.keys():
                    name = key[len('model/'):] if key.startswith('model/') else key
                    if name in source:
                        found[name] = {'equal': bool(torch.equal(f.get_tensor(key), source[name])), 'format': meta.get('format')}
        print(json.dumps(found))
        """;

    private readonly string _dir = PeersChroot.NewFolder("ckpt-compressed");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string In(string name) => Path.Combine(_dir, name);

    [Fact]
    public async Task A_compressed_checkpoint_verifies_and_after_compact_decompress_the_official_reader_opens_every_tensor_bit_for_bit()
    {
        PeersChroot.RequireReady();
        PeersChroot.Python(WriteSource, In("source.safetensors"));

        var converted = await CliRunner.Ckpt.InProcess("convert", In("source.safetensors"), In("packed"), "--compress", "--json");
        Assert.True(converted.ExitCode == 0, converted.Error);
        Assert.True((bool)converted.Json["compressed"]!);
        var inspected = await CliRunner.Ckpt.InProcess("inspect", In("packed"), "--json");
        var encoded = inspected.Json["tensors"]!.AsArray().Where(t => (string?)t!["encoding"] == "bytegroup").Select(t => (string)t!["key"]!).Order().ToList();
        Assert.Equal(["model/fc.weight", "model/head.weight", "model/proj.weight"], encoded);
        Assert.True((long)inspected.Json["written_bytes"]! < inspected.Json["tensors"]!.AsArray().Sum(t => (long)t!["bytes"]!));
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("verify", In("packed"))).ExitCode);

        // Before: the official reader sees blobs under marked keys, never the tensors.
        var before = JsonNode.Parse(PeersChroot.Python(Compare, In("source.safetensors"), _dir))!.AsObject();
        Assert.False(before.ContainsKey("fc.weight"));

        var compacted = await CliRunner.Ckpt.InProcess("compact", In("packed"), "--decompress", "--json");
        Assert.True(compacted.ExitCode == 0, compacted.Error);
        Assert.True((bool)compacted.Json["compacted"]!);
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("verify", In("packed"))).ExitCode);
        var after = JsonNode.Parse(PeersChroot.Python(Compare, In("source.safetensors"), _dir))!.AsObject();
        Assert.Equal(["fc.bias", "fc.weight", "head.weight", "noise", "proj.weight"], after.Select(p => p.Key).Order());
        Assert.All(after, p => Assert.True((bool)p.Value!["equal"]! && (string?)p.Value["format"] == "pt", $"{p.Key}: {p.Value!.ToJsonString()}"));

        var again = await CliRunner.Ckpt.InProcess("compact", In("packed"), "--decompress", "--json");
        Assert.False((bool)again.Json["compacted"]!);
    }

    [Fact]
    public async Task Compress_asked_for_a_file_destination_is_a_usage_error()
    {
        var result = await CliRunner.Ckpt.InProcess("convert", In("missing.pth"), In("out.safetensors"), "--compress", "--json");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--compress", (string)result.Json["error"]!);
    }
}
