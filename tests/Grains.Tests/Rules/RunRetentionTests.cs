using Checkpointing.Abstractions;
using Checkpointing.Contracts;

namespace Checkpointing.Grains.Tests.Rules;

/// <summary>Retention by reference, without a cluster: what a checkpoint leaving the catalog frees, holds and still costs.</summary>
public sealed class RunRetentionTests
{
    [Fact]
    public void An_evicted_checkpoint_whose_shard_a_retained_one_reuses_is_held_and_still_counted_until_nothing_reuses_it()
    {
        var run = new RunSample(new PeriodicPolicy(10, MaxToKeep: 1));
        run.Commit("model_0000009", 9, "aaaaaaaa", bytes: 100);
        run.Commit("model_0000019", 19, "bbbbbbbb", bytes: 10, StoreLayout.ReusedShard("model_0000009", RunSample.ShardOf("aaaaaaaa")));

        var evicted = run.Retention.Evict();

        Assert.Equal(["model_0000009"], evicted.Select(e => e.Name));
        var held = Assert.Single(run.State.State.Held);
        Assert.Equal([RunSample.ShardOf("aaaaaaaa")], held.Paths);
        var deletion = Assert.Single(run.State.State.Deletions);
        Assert.Equal([StoreLayout.ManifestKey(RunSample.Folder("model_0000009"))], deletion.Keys); // the manifest goes, the reused shard stays
        Assert.Equal(110, run.Retention.RetainedBytes);

        run.Catalog.Remove(run.Catalog.Find("model_0000019")!);
        run.Retention.ReleaseUnreferencedHeld();

        Assert.Empty(run.State.State.Held);
        Assert.Equal([$"{RunSample.Folder("model_0000009")}/{RunSample.ShardOf("aaaaaaaa")}"], run.State.State.Deletions[^1].Keys);
        Assert.Equal(0, run.Retention.RetainedBytes);
    }

    [Fact]
    public void A_checkpoint_nothing_reuses_is_owed_a_whole_deletion_by_its_world_size()
    {
        var run = new RunSample(new PeriodicPolicy(10, MaxToKeep: 1));
        var first = run.Commit("model_0000009", 9, "aaaaaaaa");
        run.Commit("model_0000019", 19, "bbbbbbbb");

        run.Retention.Evict();

        Assert.Equal(new PendingDeletion(RunSample.Folder("model_0000009"), first.AttemptId, 1, IncludesManifest: true), Assert.Single(run.State.State.Deletions));
        Assert.Empty(run.State.State.Held);
    }

    [Fact]
    public void Max_to_keep_never_evicts_the_tagged_checkpoint_or_a_final_one()
    {
        var run = new RunSample(new PeriodicPolicy(10, MaxToKeep: 1));
        run.Commit("model_0000009", 9, "aaaaaaaa");
        run.Commit("model_final", 30, "cccccccc");
        run.Commit("model_0000019", 19, "bbbbbbbb");
        run.State.State.LastCheckpoint = "model_0000009";

        Assert.Empty(run.Retention.Evict());
        Assert.Equal(["model_0000009", "model_0000019", "model_final"], run.Catalog.Entries.Select(e => e.Name).Order());
    }

    [Fact]
    public void A_commit_that_reuses_a_shard_no_longer_stored_is_refused()
    {
        var run = new RunSample(new PeriodicPolicy(10));
        run.Commit("model_0000009", 9, "aaaaaaaa");

        run.Retention.ThrowIfNotStored("model_0000019", [StoreLayout.ReusedShard("model_0000009", RunSample.ShardOf("aaaaaaaa"))]);
        var refusal = Assert.Throws<RunRefusedException>(() =>
            run.Retention.ThrowIfNotStored("model_0000019", [StoreLayout.ReusedShard("model_0000009", RunSample.ShardOf("dddddddd"))]));
        Assert.Contains("no longer stored", refusal.Message);
    }
}
