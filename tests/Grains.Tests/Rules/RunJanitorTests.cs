using Checkpointing.Abstractions;
using Checkpointing.Storage;
using Microsoft.Extensions.Logging.Abstractions;

namespace Checkpointing.Grains.Tests.Rules;

/// <summary>A run's garbage collection against a real in-memory store: owed deletions never take a live checkpoint's files.</summary>
public sealed class RunJanitorTests
{
    private static async Task PutAsync(MemoryStore store, string key) => await store.WriteBytesAsync(key, new byte[] { 1, 2, 3 });

    private static async Task<List<string>> KeysAsync(MemoryStore store) =>
        await store.ListAsync(RunSample.Id.StorePrefix + "/").Select(e => e.Key).OrderBy(k => k, StringComparer.Ordinal).ToListAsync();

    [Fact]
    public async Task An_owed_deletion_spares_the_files_of_the_checkpoint_saved_again_under_the_same_name()
    {
        var run = new RunSample(new PeriodicPolicy(10));
        var store = new MemoryStore();
        var folder = RunSample.Folder("model_0000009");
        await PutAsync(store, StoreLayout.ManifestKey(folder));
        await PutAsync(store, $"{folder}/{RunSample.ShardOf("aaaaaaaa")}");
        await PutAsync(store, $"{folder}/{RunSample.ShardOf("bbbbbbbb")}");
        run.Commit("model_0000009", 9, "bbbbbbbb"); // the live attempt
        run.State.State.Deletions.Add(new PendingDeletion(folder, "aaaaaaaa", 1, IncludesManifest: true)); // the replaced one
        var deleted = 0;
        var janitor = new RunJanitor(store, RunSample.Id, run.State, run.Catalog, run.Retention, () => deleted++, NullLogger.Instance);

        janitor.StartOwed();
        await janitor.WaitForAsync(null);

        Assert.Equal([StoreLayout.ManifestKey(folder), $"{folder}/{RunSample.ShardOf("bbbbbbbb")}"], await KeysAsync(store));
        Assert.Empty(run.State.State.Deletions);
        Assert.Equal(1, deleted);
    }

    [Fact]
    public async Task A_new_attempt_collects_shards_of_attempts_nothing_references_and_keeps_a_manifest_the_catalog_does_not_know()
    {
        var run = new RunSample(new PeriodicPolicy(10));
        var store = new MemoryStore();
        var lost = RunSample.Folder("model_0000019");
        var killed = RunSample.Folder("model_0000029");
        await PutAsync(store, StoreLayout.ManifestKey(lost));
        await PutAsync(store, $"{lost}/{RunSample.ShardOf("cccccccc")}");
        await PutAsync(store, $"{killed}/{RunSample.ShardOf("dddddddd")}");
        var janitor = new RunJanitor(store, RunSample.Id, run.State, run.Catalog, run.Retention, () => { }, NullLogger.Instance);

        await janitor.CleanUpForNewAttemptAsync();

        Assert.DoesNotContain($"{killed}/{RunSample.ShardOf("dddddddd")}", await KeysAsync(store));
        Assert.Contains(StoreLayout.ManifestKey(lost), await KeysAsync(store));
    }
}
