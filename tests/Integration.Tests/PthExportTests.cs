using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Checkpointing.Formats.Interop.Torch;
using Checkpointing.TestSupport;

namespace Checkpointing.Integration.Tests;

/// <summary>A checkpoint written by two cluster ranks, exported to .pth, read by PyTorch's torch.load.</summary>
[Collection(nameof(Cluster))]
public sealed class PthExportTests(TwoSiloCluster fixture)
{
    private const string TorchSummary = """
        import hashlib, json, sys, torch
        checkpoint = torch.load(sys.argv[1], map_location="cpu")
        model = checkpoint["model"]
        print(json.dumps({
            "type": type(model).__name__,
            "iteration": checkpoint["iteration"],
            "tensors": {k: {"dtype": str(v.dtype), "shape": list(v.shape), "sha256": hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest()} for k, v in model.items()},
        }))
        """;

    [Fact]
    public async Task A_cluster_checkpoint_exported_to_pth_is_read_by_torch_load_bit_for_bit()
    {
        TestTenancy.ActAs("it");
        var run = await ClusterRanks.CreateRunAsync(fixture.Client, "export", new PeriodicPolicy(10));
        var epoch = await fixture.Client.GetGrain<ITrainingRunGrain>(run.Key).StartAttempt();
        var replicas = Enumerable.Range(0, 2).Select(_ => ClusterRanks.Replica(seed: 3)).ToList();
        await Task.WhenAll(Enumerable.Range(0, 2).Select(rank =>
            ClusterRanks.Checkpointer(fixture.Client, run, fixture.Store, rank, 2, epoch, replicas[rank]).SaveAsync("model_0000009", new Dictionary<string, object?> { ["iteration"] = 9L })));

        var record = (await fixture.Client.GetGrain<ITrainingRunGrain>(run.Key).GetLastCheckpoint())!;
        var prefix = StoreLayout.CheckpointKeyOf(record.ManifestKey);
        var tree = await NativeCheckpointReader.LoadAsync(fixture.Store, prefix, await NativeCheckpointReader.ReadManifestAsync(fixture.Store, prefix), HostTensor.Allocator);
        var model = (OrderedDictionary<string, object?>)tree["model"]!;
        var pth = Path.Combine(fixture.StoreRoot, "export.pth");
        var stateDict = new Formats.Interop.PythonOrderedDict();
        foreach (var (key, value) in model) stateDict.Add(key, value);
        PthWriter.Write(pth, new OrderedDictionary<string, object?> { ["model"] = stateDict, ["iteration"] = tree["iteration"] }, v => v as HostTensor);

        var summary = JsonNode.Parse(PythonTorch.RunCode(TorchSummary, pth))!;
        Assert.Equal("OrderedDict", (string)summary["type"]!);
        Assert.Equal(9, (long)summary["iteration"]!);
        var tensors = summary["tensors"]!.AsObject();
        Assert.Equal(model.Keys, tensors.Select(t => t.Key));
        foreach (var (key, value) in replicas[0].state_dict())
        {
            using var contiguous = value.contiguous();
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(contiguous.bytes)), (string)tensors[key]!["sha256"]!);
            Assert.Equal(value.shape, tensors[key]!["shape"]!.AsArray().Select(d => (long)d!));
            Assert.Equal("torch.float32", (string)tensors[key]!["dtype"]!);
        }
    }
}
