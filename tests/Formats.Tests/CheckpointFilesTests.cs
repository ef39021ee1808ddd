using Checkpointing.Abstractions;
using Checkpointing.Storage;

namespace Checkpointing.Formats.Tests;

/// <summary>Deletion goes by our own names only: a writer or a retention pass never removes a file a checkpoint does not account for.</summary>
public sealed class CheckpointFilesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-files-").FullName;
    private readonly FileSystemStore _store;

    public CheckpointFilesTests() => _store = new FileSystemStore(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static OrderedDictionary<string, object?> State(int tensors = 3) => new()
    {
        ["model"] = new OrderedDictionary<string, object?>(Enumerable.Range(0, tensors).Select(i =>
        {
            var t = HostTensor.Allocate(TensorDType.F32, [8]);
            new Random(i).NextBytes(t.Data);
            return new KeyValuePair<string, object?>($"w{i}", t);
        })),
    };

    private Task<CheckpointManifest> Write(string name, int shards = 1) =>
        NativeCheckpointWriter.WriteAsync(_store, name, new CheckpointIdentity("local", name, 1), State(), v => v as HostTensor, new NativeWriteOptions { ShardCount = shards });

    [Fact]
    public async Task Writing_into_a_folder_with_foreign_files_is_refused_and_touches_nothing()
    {
        var project = Path.Combine(_dir, "project");
        Directory.CreateDirectory(Path.Combine(project, "src"));
        File.WriteAllText(Path.Combine(project, "src", "main.cs"), "class A {}");
        File.WriteAllText(Path.Combine(project, "README.md"), "readme");

        var e = await Assert.ThrowsAsync<ForeignContentException>(() => Write("project"));
        Assert.Contains("project", e.Message);
        Assert.Contains("project/README.md", e.Foreign);
        Assert.Contains("project/src/main.cs", e.Foreign);
        Assert.Equal(["README.md", "src"], Directory.GetFileSystemEntries(project).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("class A {}", File.ReadAllText(Path.Combine(project, "src", "main.cs")));
    }

    [Fact]
    public async Task Resaving_removes_only_our_superseded_shards()
    {
        await Write("ck", shards: 2);
        var first = Directory.GetFiles(Path.Combine(_dir, "ck")).Select(Path.GetFileName).ToHashSet();
        var second = await Write("ck", shards: 1);
        Assert.Equal(["manifest.json", second.Shards.Single().Path], Directory.GetFiles(Path.Combine(_dir, "ck")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(second.Shards.Single().Path, first);
    }

    [Fact]
    public async Task Deleting_a_checkpoint_removes_its_manifest_and_shards_and_nothing_else()
    {
        await Write("ck", shards: 2);
        await Write("other");
        File.WriteAllText(Path.Combine(_dir, "ck", "notes.txt"), "mine");
        Directory.CreateDirectory(Path.Combine(_dir, "ck", "sub"));
        File.WriteAllText(Path.Combine(_dir, "ck", "sub", StoreLayout.ShardName(0, 1, "0123abcd")), "mine too");

        Assert.Equal(3, await CheckpointFiles.DeleteCheckpointAsync(_store, "ck"));

        Assert.Equal(["notes.txt", "sub"], Directory.GetFileSystemEntries(Path.Combine(_dir, "ck")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.True(File.Exists(Path.Combine(_dir, "ck", "sub", StoreLayout.ShardName(0, 1, "0123abcd"))));
        Assert.True(File.Exists(Path.Combine(_dir, "other", "manifest.json")));
    }

    [Fact]
    public async Task Orphan_shards_are_those_no_manifest_references()
    {
        var manifest = await Write("ck");
        var orphan = StoreLayout.ShardName(0, 1, "deadbeef");
        File.WriteAllText(Path.Combine(_dir, "ck", orphan), "killed save");
        Directory.CreateDirectory(Path.Combine(_dir, "killed"));
        File.WriteAllText(Path.Combine(_dir, "killed", orphan), "killed save");

        Assert.Equal(1, await CheckpointFiles.DeleteOrphanShardsAsync(_store, "ck", TimeSpan.Zero));
        Assert.Equal(1, await CheckpointFiles.DeleteOrphanShardsAsync(_store, "killed", TimeSpan.Zero));

        Assert.Equal(["manifest.json", manifest.Shards.Single().Path], Directory.GetFiles(Path.Combine(_dir, "ck")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.False(Directory.Exists(Path.Combine(_dir, "killed")));
    }

    [Theory]
    [InlineData("manifest.json", true)]
    [InlineData("shard-00000-of-00004-3f9a0c1e.safetensors", true)]
    [InlineData("shard-00000-of-00004-3F9A0C1E.safetensors", false)]
    [InlineData("shard-0-of-4-3f9a0c1e.safetensors", false)]
    [InlineData("shard-00000-of-00004-3f9a0c1e.safetensors.bak", false)]
    [InlineData("model.safetensors", false)]
    [InlineData("README.md", false)]
    public void Our_names_are_exactly_the_manifest_and_attempt_named_shards(string name, bool ours) =>
        Assert.Equal(ours, StoreLayout.IsOurs(name));
}
