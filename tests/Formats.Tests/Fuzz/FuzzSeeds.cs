using Checkpointing.Abstractions;
using Checkpointing.Formats.Interop;
using Checkpointing.Formats.Interop.Torch;
using Checkpointing.Storage;
using Checkpointing.TestSupport;

namespace Checkpointing.Formats.Tests.Fuzz;

/// <summary>
/// Real files the mutations start from: pickles and a .pth written by /usr/bin/python3 (numpy, torch),
/// a .pth written by our <see cref="PthWriter"/>, and the shard and manifest.json of a native checkpoint.
/// </summary>
public sealed class FuzzSeeds : IAsyncLifetime
{
    private const string PythonWriter = """
        import pickle, sys, numpy as np, torch
        out = sys.argv[1]
        blobs = {
            'conv1_w': np.arange(24, dtype=np.float32).reshape(2, 3, 4),
            'conv1_b': np.array([1.5, -2.0], dtype='>f8'),
            'fc_w': np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
            'fc_w_momentum': np.zeros(3, dtype=np.uint8),
            'flag': np.array(True),
        }
        extra = [1, 2.5, 'x', None, True, (1, (2, 'y')), {3: b'b', 'k': [1.0]}, set([4, 5]), 2 ** 70]
        for protocol in (0, 2, 4, 5):
            with open(f'{out}/c2_p{protocol}.pkl', 'wb') as f:
                pickle.dump({'blobs': blobs, 'extra': extra}, f, protocol=protocol)
        with open(f'{out}/zoo.pkl', 'wb') as f:
            pickle.dump({'model': {'w': np.ones((2, 2), dtype=np.float16)}, '__author__': 'zoo'}, f, protocol=2)
        base = torch.arange(12, dtype=torch.float32).view(3, 4)
        torch.save({
            'model': {'w': base, 'col': base[:, 1], 'tied': base, 'step': torch.tensor(7), 'h': torch.ones(2, dtype=torch.bfloat16)},
            'optimizer': {'state': {0: {'momentum_buffer': torch.zeros(3, 4)}}, 'param_groups': [{'lr': 0.1, 'params': [0]}]},
            'iteration': 3,
        }, f'{out}/torch.pth')
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("fuzz-seeds-").FullName;

    /// <summary>Pickles (protocols 0, 2, 4, 5) of detectron-style dicts with numpy arrays.</summary>
    public List<byte[]> Pickles { get; } = [];

    /// <summary>torch.save zips: one from torch, one from <see cref="PthWriter"/>.</summary>
    public List<byte[]> PthFiles { get; } = [];

    public List<byte[]> SafetensorsShards { get; } = [];

    public List<byte[]> Manifests { get; } = [];

    /// <summary>Raw length of every <see cref="Encoded"/> seed.</summary>
    public const int EncodedRawBytes = 64 << 10;

    /// <summary>bytegroup encodings of bf16 tensors: weights-like, random, constant; several frames each.</summary>
    public List<byte[]> Encoded { get; } =
    [
        BytegroupCodec.Encode(Properties.BytegroupCodecProperties.WeightsLike(TensorDType.BF16, EncodedRawBytes / 2, seed: 3), TensorDType.BF16, frameBytes: 16 << 10),
        BytegroupCodec.Encode(Enumerable.Range(0, EncodedRawBytes).Select(i => (byte)(i * 7919 >> 3)).ToArray(), TensorDType.BF16, frameBytes: 16 << 10),
        BytegroupCodec.Encode(new byte[EncodedRawBytes], TensorDType.BF16, frameBytes: 16 << 10),
    ];

    /// <summary>The table every <see cref="BlockEntries"/> seed maps: rows of 64 bytes (16 f32), one row per block.</summary>
    public const int BlockRows = 64, BlockRowBytes = 64;

    /// <summary>Entries of a block-mapped table (map, hashes, blocks): every block its own, then a few changed blocks referencing the rest.</summary>
    public List<byte[]> BlockEntries { get; } = [];

    public async Task InitializeAsync()
    {
        await AddBlockEntriesAsync();
        PythonTorch.RunCode(PythonWriter, _dir);
        foreach (var name in new[] { "c2_p0.pkl", "c2_p2.pkl", "c2_p4.pkl", "c2_p5.pkl", "zoo.pkl" }) Pickles.Add(await File.ReadAllBytesAsync(Path.Combine(_dir, name)));
        PthFiles.Add(await File.ReadAllBytesAsync(Path.Combine(_dir, "torch.pth")));
        using (var written = new MemoryStream())
        {
            PthWriter.Write(written, State(), v => v as HostTensor);
            PthFiles.Add(written.ToArray());
        }

        var store = new FileSystemStore(Path.Combine(_dir, "native"));
        await NativeCheckpointWriter.WriteAsync(store, "model_0000009", new CheckpointIdentity("fuzz", "model_0000009", 9), State(), v => v as HostTensor, new NativeWriteOptions { ShardCount = 2 });
        var folder = Path.Combine(_dir, "native", "model_0000009");
        foreach (var shard in Directory.GetFiles(folder, "*.safetensors").Order(StringComparer.Ordinal)) SafetensorsShards.Add(await File.ReadAllBytesAsync(shard));
        Manifests.Add(await File.ReadAllBytesAsync(Path.Combine(folder, ManifestJson.FileName)));

        // An incremental checkpoint: tensor hashes, and shards reused from the one above (the "checkpoint" field).
        var earlier = (await RunCheckpoints.ReadCommittedAsync(store, "")).Committed;
        var changed = State();
        ((HostTensor)((PythonOrderedDict)changed["model"]!)["conv.weight"]!).Data[0] ^= 0xFF;
        await NativeCheckpointWriter.WriteAsync(store, "model_0000019", new CheckpointIdentity("fuzz", "model_0000019", 19), changed, v => v as HostTensor,
            new NativeWriteOptions { ReuseFrom = earlier });
        Manifests.Add(await File.ReadAllBytesAsync(Path.Combine(_dir, "native", "model_0000019", ManifestJson.FileName)));

        // A sharded checkpoint (format 3): conv.weight in uneven boxes along dimension 1, conv.bias as flat slices.
        var sharded = State();
        var model = (PythonOrderedDict)sharded["model"]!;
        model["conv.weight"] = Parts((HostTensor)model["conv.weight"]!, TensorLayout.Box([2, 3], [0, 0], [2, 1]), TensorLayout.Box([2, 3], [0, 1], [2, 2]));
        model["conv.bias"] = Parts((HostTensor)model["conv.bias"]!, TensorLayout.Flat([2], 0, 1), TensorLayout.Flat([2], 1, 1));
        await NativeCheckpointWriter.WriteAsync(store, "model_0000029", new CheckpointIdentity("fuzz", "model_0000029", 29, 2), sharded, v => v as HostTensor,
            new NativeWriteOptions { ShardCount = 2 });
        Manifests.Add(await File.ReadAllBytesAsync(Path.Combine(_dir, "native", "model_0000029", ManifestJson.FileName)));
    }

    private async Task AddBlockEntriesAsync()
    {
        var store = new MemoryStore();
        var table = HostTensor.Allocate(TensorDType.F32, [BlockRows, BlockRowBytes / 4]);
        new Random(7).NextBytes(table.Data);
        foreach (var name in new[] { "b0", "b1", "b2" })
        {
            table.Data[new Random(name.GetHashCode(StringComparison.Ordinal)).Next(table.Data.Length)] ^= 0x11;
            var state = new OrderedDictionary<string, object?> { ["table"] = table };
            var manifest = await NativeCheckpointWriter.WriteAsync(store, name, new CheckpointIdentity("fuzz", name, 1), state, v => v as HostTensor,
                new NativeWriteOptions { ReuseFrom = (await RunCheckpoints.ReadCommittedAsync(store, "")).Committed, BlockReuse = new BlockReuse { MinBytes = 1, BlockBytes = BlockRowBytes } });
            var entry = manifest.Tensors["table"];
            var shardKey = StoreLayout.ShardKey(name, manifest.Shards[entry.Shard]);
            await using var shard = await store.OpenReadAsync(shardKey);
            var dataStart = SafetensorsHeader.Read(shard, manifest.Shards[entry.Shard].Bytes, shardKey).DataStart;
            var bytes = new byte[entry.ByteLength];
            await store.ReadRangeAsync(shardKey, dataStart + entry.DataOffsets[0], bytes);
            BlockEntries.Add(bytes);
        }
    }

    private static TensorParts Parts(HostTensor whole, params TensorLayout[] layouts) => HostTensorSlice.Parts(whole, layouts);

    public Task DisposeAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    private static OrderedDictionary<string, object?> State() => new()
    {
        ["model"] = new PythonOrderedDict
        {
            ["conv.weight"] = Tensor(TensorDType.F32, 2, 3),
            ["conv.bias"] = Tensor(TensorDType.F16, 2),
            ["bn.num_batches_tracked"] = Tensor(TensorDType.I64),
            ["mask"] = Tensor(TensorDType.BOOL, 3),
            ["empty"] = Tensor(TensorDType.BF16, 0, 4),
        },
        ["optimizer"] = new OrderedDictionary<string, object?>
        {
            ["param_groups"] = new List<object?> { new OrderedDictionary<string, object?> { ["lr"] = 0.01, ["params"] = new List<object?> { 0L, 1L } } },
        },
        ["iteration"] = 9L,
        ["note"] = "seed",
    };

    private static HostTensor Tensor(TensorDType dtype, params long[] shape)
    {
        var tensor = HostTensor.Allocate(dtype, shape);
        for (var i = 0; i < tensor.Data.Length; i++) tensor.Data[i] = (byte)(i * 7 + 1);
        return tensor;
    }
}
