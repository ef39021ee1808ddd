using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Checkpointing.TestSupport;
using static TorchSharp.torch;

namespace Checkpointing.Integration.Tests;

/// <summary>
/// Incremental checkpoints in cluster mode (docs/format.md#incremental-checkpoints): each rank references the tensors of its share
/// that did not change since the run's last checkpoint, and the run grain holds the reused shards of
/// evicted checkpoints until no retained checkpoint references them.
/// </summary>
[Collection(nameof(Cluster))]
public sealed class IncrementalClusterTests(TwoSiloCluster fixture)
{
    [Fact]
    public async Task Two_ranks_write_a_frozen_backbone_once_and_retention_deletes_a_shard_only_when_nothing_references_it()
    {
        TestTenancy.ActAs("it");
        var grains = fixture.Client;
        var run = await ClusterRanks.CreateRunAsync(grains, "incremental", new PeriodicPolicy(1, MaxToKeep: 2));
        var grain = grains.GetGrain<ITrainingRunGrain>(run.Key);
        var epoch = await grain.StartAttempt();
        var replicas = Enumerable.Range(0, 2).Select(_ => ClusterRanks.Replica(seed: 5)).ToList();
        var checkpointers = Enumerable.Range(0, 2)
            .Select(rank => new Core.Checkpointer(replicas[rank], new TrainerAgent.ClusterBackend(grains, run, fixture.Store, rank, 2, epoch) { Incremental = true }))
            .ToList();

        for (var step = 0; step < 6; step++)
        {
            // Training changes only the head (the last Linear); the backbone is frozen.
            foreach (var replica in replicas) using (no_grad()) replica.state_dict()["8.weight"].add_(0.5f);
            var name = $"model_{step:D7}";
            await Task.WhenAll(checkpointers.Select(c => c.SaveAsync(name, new Dictionary<string, object?> { ["iteration"] = (long)step })));

            var record = (await grain.GetLastCheckpoint())!;
            var manifest = await NativeCheckpointReader.ReadManifestAsync(fixture.Store, StoreLayout.CheckpointKeyOf(record.ManifestKey));
            if (step > 0)
            {
                Assert.True(manifest.WrittenBytes < manifest.TensorBytes / 5, $"{name} wrote {manifest.WrittenBytes} of {manifest.TensorBytes} bytes");
                Assert.Equal(manifest.WrittenBytes + (await fixture.Store.GetEntryAsync(record.ManifestKey))!.Length, record.Bytes); // what the store holds
            }
            var loaded = ClusterRanks.Replica(seed: 77);
            ClusterRanks.Checkpointer(grains, run, fixture.Store, 0, 1, epoch, loaded).Load($"{TrainerAgent.ClusterBackend.Scheme}{run.Key}/{name}");
            Assert.True(ClusterRanks.SameWeights(replicas[0], loaded), $"{name} does not load bit-exact");
            await AssertEveryShardReferencedAsync(run, grain);
        }
        Assert.Equal(["model_0000004", "model_0000005"], (await grain.ListCheckpoints()).Select(c => c.Name));
        // The retained bytes count the held backbone shards of evicted model_0000000 as well as the catalog's written bytes.
        var view = await grain.Get();
        Assert.True(view.HeldBytes > 0, "model_0000000's backbone shards are held for the retained checkpoints");
        Assert.Equal(view.Catalog.Sum(c => c.Bytes) + view.HeldBytes, view.RetainedBytes);
    }

    [Fact]
    public async Task Two_ranks_save_compressed_incremental_checkpoints_that_the_run_records_and_that_load_bit_for_bit()
    {
        TestTenancy.ActAs("it");
        var grains = fixture.Client;
        var run = await ClusterRanks.CreateRunAsync(grains, "compressed", new PeriodicPolicy(1, MaxToKeep: 2));
        var grain = grains.GetGrain<ITrainingRunGrain>(run.Key);
        var epoch = await grain.StartAttempt();
        var replicas = Enumerable.Range(0, 2).Select(_ => ClusterRanks.Replica(seed: 6)).ToList();
        var checkpointers = Enumerable.Range(0, 2)
            .Select(rank => new Core.Checkpointer(replicas[rank], new TrainerAgent.ClusterBackend(grains, run, fixture.Store, rank, 2, epoch)
            {
                Incremental = true, Compression = new TensorCompression { MinBytes = 256 },
            }))
            .ToList();

        for (var step = 0; step < 3; step++)
        {
            foreach (var replica in replicas) using (no_grad()) replica.state_dict()["8.weight"].mul_(0.5f);
            var name = $"model_{step:D7}";
            await Task.WhenAll(checkpointers.Select(c => c.SaveAsync(name, new Dictionary<string, object?> { ["iteration"] = (long)step })));

            var record = (await grain.GetLastCheckpoint())!;
            var manifest = await NativeCheckpointReader.ReadManifestAsync(fixture.Store, StoreLayout.CheckpointKeyOf(record.ManifestKey));
            Assert.Equal(CheckpointManifest.CurrentFormatVersion, manifest.FormatVersion);
            Assert.Contains(manifest.Tensors.Values, t => t.Encoding == BytegroupCodec.Name);
            Assert.True(manifest.WrittenBytes < manifest.TensorBytes, $"{name} wrote {manifest.WrittenBytes} of {manifest.TensorBytes} bytes");
            var loaded = ClusterRanks.Replica(seed: 78);
            ClusterRanks.Checkpointer(grains, run, fixture.Store, 0, 1, epoch, loaded).Load($"{TrainerAgent.ClusterBackend.Scheme}{run.Key}/{name}");
            Assert.True(ClusterRanks.SameWeights(replicas[0], loaded), $"{name} does not load bit-exact");
            await AssertEveryShardReferencedAsync(run, grain);
        }
    }

    [Fact]
    public async Task Two_ranks_write_only_the_touched_rows_of_an_embedding_table_and_retention_holds_the_blocks_retained_checkpoints_reference()
    {
        TestTenancy.ActAs("it");
        var grains = fixture.Client;
        var run = await ClusterRanks.CreateRunAsync(grains, "blocks", new PeriodicPolicy(1, MaxToKeep: 2));
        var grain = grains.GetGrain<ITrainingRunGrain>(run.Key);
        var epoch = await grain.StartAttempt();
        static nn.Module Model(long seed) => SeededWeights.Fill(nn.Sequential(("emb", nn.Embedding(2048, 32)), ("head", nn.Linear(32, 8))), seed);
        var replicas = Enumerable.Range(0, 2).Select(_ => Model(seed: 9)).ToList();
        // Rows of 128 bytes, one per block; the 256 KiB table is block-mapped, the head reused or written whole.
        var blocks = new BlockReuse { MinBytes = 64 << 10, BlockBytes = 128 };
        var checkpointers = Enumerable.Range(0, 2)
            .Select(rank => new Core.Checkpointer(replicas[rank], new TrainerAgent.ClusterBackend(grains, run, fixture.Store, rank, 2, epoch) { Incremental = true, BlockReuse = blocks }))
            .ToList();

        var random = new Random(10);
        for (var step = 0; step < 6; step++)
        {
            var rows = Enumerable.Range(0, 20).Select(_ => (long)random.Next(2048)).ToArray(); // 1% of the rows
            foreach (var replica in replicas)
            {
                using (no_grad()) replica.state_dict()["emb.weight"].index_add_(0, tensor(rows), ones(rows.Length, 32), 1);
            }
            var name = $"model_{step:D7}";
            await Task.WhenAll(checkpointers.Select(c => c.SaveAsync(name, new Dictionary<string, object?> { ["iteration"] = (long)step })));

            var record = (await grain.GetLastCheckpoint())!;
            var manifest = await NativeCheckpointReader.ReadManifestAsync(fixture.Store, StoreLayout.CheckpointKeyOf(record.ManifestKey));
            var table = manifest.Tensors["model/emb.weight"];
            Assert.Equal(BlockMap.Encoding, table.Encoding);
            if (step > 0)
            {
                Assert.True(table.ByteLength < table.LogicalLength / 20, $"{name} wrote {table.ByteLength} bytes of its {table.LogicalLength}-byte table");
                Assert.Contains(manifest.Shards, s => s.Checkpoint is not null); // the earlier checkpoints' blocks
            }
            var loaded = Model(seed: 79);
            ClusterRanks.Checkpointer(grains, run, fixture.Store, 0, 1, epoch, loaded).Load($"{TrainerAgent.ClusterBackend.Scheme}{run.Key}/{name}");
            Assert.True(ClusterRanks.SameWeights(replicas[0], loaded), $"{name} does not load bit-exact");
            await NativeCheckpointReader.VerifyAsync(fixture.Store, StoreLayout.CheckpointKeyOf(record.ManifestKey), manifest);
            await AssertEveryShardReferencedAsync(run, grain);
        }
        Assert.Equal(["model_0000004", "model_0000005"], (await grain.ListCheckpoints()).Select(c => c.Name));
        Assert.True((await grain.Get()).HeldBytes > 0, "model_0000000's blocks are held for the retained checkpoints");
    }

    /// <summary>Once the owed deletions ran, the shard blobs under the run are exactly those the retained manifests reference.</summary>
    private async Task AssertEveryShardReferencedAsync(RunId run, ITrainingRunGrain grain)
    {
        var prefix = run.StorePrefix + "/";
        HashSet<string> referenced = [], stored = [];
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var committed = await RunCheckpoints.ReadCommittedAsync(fixture.Store, prefix);
            Assert.Empty(committed.Unreadable);
            Assert.Equal((await grain.ListCheckpoints()).Select(c => c.Name).Order(), committed.Committed.Select(c => c.Name).Order());
            referenced = committed.ReferencedShardKeys(prefix);
            stored = [];
            await foreach (var entry in fixture.Store.ListAsync(prefix))
            {
                if (StoreLayout.IsShard(entry.Key[(entry.Key.LastIndexOf('/') + 1)..])) stored.Add(entry.Key);
            }
            Assert.Empty(referenced.Except(stored)); // never: a referenced shard deleted
            if (stored.SetEquals(referenced)) return;
            await Task.Delay(100); // deletions run off the acknowledgement path
        }
        Assert.Fail($"unreferenced shards stay: {string.Join(", ", stored.Except(referenced))}");
    }
}
