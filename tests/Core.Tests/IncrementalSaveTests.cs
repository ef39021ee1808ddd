using Checkpointing.Abstractions;
using Checkpointing.Formats;
using CsCheck;
using static TorchSharp.torch;

namespace Checkpointing.Core.Tests;

/// <summary>
/// Incremental saves in a local folder (docs/format.md#incremental-checkpoints): a frozen backbone is written once, retention deletes
/// a shard only when no retained manifest references it, and nothing is lost across kills.
/// </summary>
public sealed class IncrementalSaveTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A backbone of 8 frozen 64 KiB tensors and a 4 KiB head that training changes.</summary>
    private static nn.Module FrozenBackbone()
    {
        var model = nn.Sequential(Enumerable.Range(0, 8).Select(i => ($"b{i}", (nn.Module<Tensor, Tensor>)nn.Linear(128, 128, hasBias: false)))
            .Append(("head", nn.Linear(128, 8, hasBias: false))).ToArray());
        return model;
    }

    private static void TrainHeadStep(nn.Module model)
    {
        using var _ = no_grad();
        model.state_dict()["head.weight"].add_(0.01f);
    }

    private CheckpointManifest Manifest(string name) => NativeCheckpointReader.ReadManifestAsync(new Storage.FileSystemStore(_dir.Path), name).GetAwaiter().GetResult();

    /// <summary>Shard files on disk and the shard keys the committed manifests reference.</summary>
    private (HashSet<string> OnDisk, HashSet<string> Referenced) Shards()
    {
        var onDisk = Directory.EnumerateFiles(_dir.Path, "*.safetensors", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(_dir.Path, f).Replace(Path.DirectorySeparatorChar, '/')).ToHashSet();
        var run = RunCheckpoints.ReadCommittedAsync(new Storage.FileSystemStore(_dir.Path), "").GetAwaiter().GetResult();
        Assert.Empty(run.Unreadable);
        return (onDisk, run.ReferencedShardKeys(""));
    }

    [Fact]
    public void A_frozen_backbone_is_written_once_and_every_retained_checkpoint_loads_whole()
    {
        var model = FrozenBackbone();
        var checkpointer = new Checkpointer(model, _dir.Path, options: new() { Incremental = true });
        var periodic = new PeriodicCheckpointer(checkpointer, 5, maxIter: 40, maxToKeep: 2);
        var expected = new Dictionary<string, Dictionary<string, Tensor>>();
        for (var iteration = 0; iteration < 40; iteration++)
        {
            TrainHeadStep(model);
            periodic.Step(iteration);
            var state = model.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
            if ((iteration + 1) % 5 == 0) expected[$"model_{iteration:D7}"] = state;
            if (iteration == 39) expected["model_final"] = state;
        }

        var last = Manifest("model_0000039");
        Assert.True(last.WrittenBytes < last.TensorBytes / 8, $"model_0000039 wrote {last.WrittenBytes} of {last.TensorBytes} bytes");
        Assert.Equal(0, Manifest("model_final").WrittenBytes); // the same state as model_0000039
        var (onDisk, referenced) = Shards();
        Assert.Equal(referenced.Order(), onDisk.Order()); // nothing unreferenced survives, nothing referenced is missing
        foreach (var name in new Checkpointer(FrozenBackbone(), _dir.Path).GetAllCheckpointFiles().Select(Path.GetFileName))
        {
            var loaded = FrozenBackbone();
            new Checkpointer(loaded).Load(Path.Combine(_dir.Path, name!));
            foreach (var (key, tensor) in expected[name!]) Assert.True(Models.BitEqual(tensor, loaded.state_dict()[key]), $"{name}: {key}");
        }
    }

    [Fact]
    public void An_embedding_table_writes_only_its_touched_rows_and_retention_keeps_exactly_the_blocks_retained_checkpoints_reference()
    {
        var model = nn.Sequential(("emb", nn.Embedding(4096, 32)), ("head", nn.Linear(32, 8)));
        var options = new LocalBackendOptions { Incremental = true, BlockReuse = new BlockReuse { MinBytes = 64 << 10, BlockBytes = 128 } };
        var checkpointer = new Checkpointer(model, _dir.Path, options: options);
        var periodic = new PeriodicCheckpointer(checkpointer, 1, maxIter: 8, maxToKeep: 2);
        var random = new Random(3);
        var expected = new Dictionary<string, Dictionary<string, Tensor>>();
        for (var iteration = 0; iteration < 8; iteration++)
        {
            var rows = Enumerable.Range(0, 41).Select(_ => (long)random.Next(4096)).ToArray(); // 1% of the rows
            using (no_grad()) model.state_dict()["emb.weight"].index_add_(0, tensor(rows), ones(rows.Length, 32), 1);
            periodic.Step(iteration);
            var state = model.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
            expected[$"model_{iteration:D7}"] = state;
            if (iteration == 7) expected["model_final"] = state;
        }

        var table = Manifest("model_0000006").Tensors["model/emb.weight"];
        Assert.Equal(BlockMap.Encoding, table.Encoding);
        Assert.True(table.ByteLength < table.LogicalLength / 20, $"model_0000006 wrote {table.ByteLength} bytes of its {table.LogicalLength}-byte table");
        var (onDisk, referenced) = Shards();
        Assert.Equal(referenced.Order(), onDisk.Order()); // the first save's blocks stay while a retained map names them, nothing else does
        foreach (var name in new Checkpointer(nn.Sequential(("emb", nn.Embedding(4096, 32)), ("head", nn.Linear(32, 8))), _dir.Path).GetAllCheckpointFiles().Select(Path.GetFileName))
        {
            var loaded = nn.Sequential(("emb", nn.Embedding(4096, 32)), ("head", nn.Linear(32, 8)));
            new Checkpointer(loaded).Load(Path.Combine(_dir.Path, name!));
            foreach (var (key, tensor) in expected[name!]) Assert.True(Models.BitEqual(tensor, loaded.state_dict()[key]), $"{name}: {key}");
        }
    }

    [Fact]
    public async Task Retention_during_an_async_save_keeps_the_shards_that_save_reuses()
    {
        var model = FrozenBackbone();
        var checkpointer = new Checkpointer(model, _dir.Path, options: new() { Incremental = true }) { AsyncSave = true };
        var periodic = new PeriodicCheckpointer(checkpointer, 1, maxIter: 12, maxToKeep: 1);
        for (var iteration = 0; iteration < 12; iteration++)
        {
            TrainHeadStep(model);
            periodic.Step(iteration);
        }
        await checkpointer.WaitForPendingSaveAsync();

        var (onDisk, referenced) = Shards();
        Assert.Equal(referenced.Order(), onDisk.Order());
        var loaded = FrozenBackbone();
        new Checkpointer(loaded).Load(Path.Combine(_dir.Path, "model_final"));
        Models.AssertSameParameters(model, loaded);
    }

    [Fact]
    public void Saves_retention_and_kills_in_any_order_never_lose_a_retained_checkpoint()
    {
        // A sequence of steps: each changes some of 4 tensors, saves, keeps the newest `keep`, and may be
        // "killed" (the backend's memory is lost) just after a retention deletion removed only a manifest.
        var steps = Gen.Select(Gen.Int[0, 15], Gen.Int[0, 9]).Array[2, 9];
        Gen.Select(steps, Gen.Int[1, 3]).Sample((plan, keep) =>
        {
            var root = Directory.CreateTempSubdirectory("incremental-prop-").FullName;
            try
            {
                RunPlan(root, plan, keep);
            }
            finally
            {
                Directory.Delete(root, recursive: true);
            }
        }, iter: 40);
    }

    private static void RunPlan(string root, (int Changed, int Kill)[] plan, int keep)
    {
        LocalBackend NewBackend() => new(root, new() { LeftoverMinimumAge = TimeSpan.Zero, Incremental = true });
        var backend = NewBackend();
        var tensors = Enumerable.Range(0, 4).Select(i => rand(1024, generator: new Generator((ulong)i))).ToArray();
        var expected = new Dictionary<string, byte[][]>();
        var saved = new List<string>();
        for (var step = 0; step < plan.Length; step++)
        {
            var (changed, kill) = plan[step];
            for (var t = 0; t < 4; t++)
            {
                if ((changed & (1 << t)) != 0) tensors[t].add_(1);
            }
            var name = $"model_{step:D7}";
            var data = new Dictionary<string, object?> { ["model"] = new Dictionary<string, object?>(tensors.Select((t, i) => KeyValuePair.Create($"t{i}", (object?)t))) };
            backend.SaveAsync(name, step, data, new NativeWriteOptions(), CancellationToken.None).GetAwaiter().GetResult();
            expected[name] = tensors.Select(t => t.bytes.ToArray()).ToArray();
            saved.Add(name);

            foreach (var old in saved.Take(Math.Max(0, saved.Count - keep)).ToList())
            {
                if (kill == 0)
                {
                    // Killed inside DeleteAsync: the manifest is gone, the shards are not, and the process's memory is lost.
                    File.Delete(Path.Combine(root, old, ManifestJson.FileName));
                    backend = NewBackend();
                }
                else
                {
                    Assert.True(backend.DeleteAsync(old, CancellationToken.None).GetAwaiter().GetResult());
                }
                saved.Remove(old);
            }
            if (kill == 1) backend = NewBackend(); // killed between steps

            var store = new Storage.FileSystemStore(root);
            foreach (var name2 in saved)
            {
                var manifest = NativeCheckpointReader.ReadManifestAsync(store, name2).GetAwaiter().GetResult();
                var tree = NativeCheckpointReader.LoadAsync(store, name2, manifest, HostTensor.Allocator).GetAwaiter().GetResult();
                var model = (OrderedDictionary<string, object?>)tree["model"]!;
                for (var t = 0; t < 4; t++) Assert.True(((HostTensor)model[$"t{t}"]!).Data.AsSpan().SequenceEqual(expected[name2][t]), $"step {step}: {name2} t{t}");
            }
            if (kill != 0)
            {
                // After a step that was not killed mid-deletion, every shard on disk is referenced.
                var run = RunCheckpoints.ReadCommittedAsync(store, "").GetAwaiter().GetResult();
                var referenced = run.ReferencedShardKeys("");
                var onDisk = Directory.EnumerateFiles(root, "*.safetensors", SearchOption.AllDirectories)
                    .Select(f => Path.GetRelativePath(root, f).Replace(Path.DirectorySeparatorChar, '/'));
                Assert.True(referenced.SetEquals(onDisk), $"step {step} keep {keep}: on disk only [{string.Join(", ", onDisk.Except(referenced))}], referenced only [{string.Join(", ", referenced.Except(onDisk))}]");
            }
        }
    }
}
