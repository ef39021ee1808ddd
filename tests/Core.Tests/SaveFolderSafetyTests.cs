using Checkpointing.Abstractions;
using System.Text;
using Checkpointing.Formats;
using Checkpointing.Storage;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Core.Tests;

/// <summary>
/// A save folder never loses a checkpoint and never harms what is around it: a damaged tag is an
/// error, links are not followed, and only what killed saves of ours left is collected.
/// </summary>
public sealed class SaveFolderSafetyTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly TempDir _elsewhere = new();

    public void Dispose()
    {
        _dir.Dispose();
        _elsewhere.Dispose();
    }

    private string Tag => _dir.Sub("last_checkpoint");

    private static Dictionary<string, object?> At(long iteration) => new() { ["iteration"] = iteration };

    private Checkpointer SaveTwo()
    {
        var checkpointer = new Checkpointer(Models.Small(), _dir.Path, options: new() { LeftoverMinimumAge = TimeSpan.Zero });
        checkpointer.Save("model_0000004", At(4));
        checkpointer.Save("model_0000009", At(9));
        return checkpointer;
    }

    public static TheoryData<byte[]> DamagedTags => new()
    {
        Array.Empty<byte>(),
        Encoding.UTF8.GetBytes(" \n\t"),
        new byte[] { 0xff, 0xfe, 0x00, 0x41 },
        Encoding.UTF8.GetBytes("../../etc"),
    };

    [Theory]
    [MemberData(nameof(DamagedTags))]
    public void A_damaged_tag_is_an_error_naming_the_file_and_never_a_fresh_start(byte[] content)
    {
        SaveTwo();
        File.WriteAllBytes(Tag, content);
        var model = Models.Small();
        var checkpointer = new Checkpointer(model, _dir.Path);

        var e = Assert.Throws<CheckpointFormatException>(() => checkpointer.ResumeOrLoad("", resume: true));
        Assert.Equal(Tag, e.Source);
        Assert.Contains(Tag, e.Message);
        Assert.Throws<CheckpointFormatException>(() => checkpointer.HasCheckpoint());
        Assert.True(File.Exists(_dir.Sub("model_0000009/manifest.json")));
    }

    [Fact]
    public void A_dangling_tag_is_an_error_naming_the_file_and_the_missing_checkpoint()
    {
        SaveTwo();
        File.WriteAllText(Tag, "model_0000099");
        var checkpointer = new Checkpointer(Models.Small(), _dir.Path);

        var e = Assert.Throws<CheckpointFormatException>(() => checkpointer.ResumeOrLoad("", resume: true));
        Assert.Contains(Tag, e.Message);
        Assert.Contains("model_0000099", e.Message);
    }

    [Fact]
    public void No_tag_file_still_means_no_checkpoint()
    {
        var checkpointer = new Checkpointer(Models.Small(), _dir.Path);
        Assert.False(checkpointer.HasCheckpoint());
        Assert.Empty(checkpointer.ResumeOrLoad("", resume: true));
    }

    [Fact]
    public void Retention_does_not_delete_through_a_symlinked_checkpoint_folder()
    {
        var logger = new ListLogger();
        var checkpointer = new Checkpointer(Models.Small(), _dir.Path, logger: logger);
        var periodic = new PeriodicCheckpointer(checkpointer, 1, 100, maxToKeep: 1);
        periodic.Step(0);
        // The folder is swapped for a link to somewhere else that looks like a checkpoint.
        Directory.Move(_dir.Sub("model_0000000"), _elsewhere.Sub("target"));
        File.WriteAllText(_elsewhere.Sub("target/precious.txt"), "not yours");
        Directory.CreateSymbolicLink(_dir.Sub("model_0000000"), _elsewhere.Sub("target"));
        var targetFiles = Directory.GetFiles(_elsewhere.Sub("target")).Order(StringComparer.Ordinal).ToList();

        periodic.Step(1);
        periodic.Step(2);

        Assert.Equal(targetFiles, Directory.GetFiles(_elsewhere.Sub("target")).Order(StringComparer.Ordinal));
        Assert.True(new DirectoryInfo(_dir.Sub("model_0000000")).LinkTarget is not null);
        Assert.Contains(logger.At(LogLevel.Warning), m => m.Contains("model_0000000", StringComparison.Ordinal) && m.Contains("symbolic link", StringComparison.Ordinal));
        Assert.False(Directory.Exists(_dir.Sub("model_0000001")));
        Assert.True(File.Exists(_dir.Sub("model_0000002/manifest.json")));
    }

    [Fact]
    public void Loading_refuses_a_symlinked_checkpoint_folder_or_shard()
    {
        SaveTwo();
        Directory.Move(_dir.Sub("model_0000004"), _elsewhere.Sub("model_0000004"));
        Directory.CreateSymbolicLink(_dir.Sub("model_0000004"), _elsewhere.Sub("model_0000004"));
        var shard = Directory.GetFiles(_dir.Sub("model_0000009"), "shard-*").Single();
        File.Move(shard, _elsewhere.Sub("shard"));
        File.CreateSymbolicLink(shard, _elsewhere.Sub("shard"));
        var checkpointer = new Checkpointer(Models.Small(), _dir.Path);

        var folder = Assert.Throws<SymbolicLinkRefusedException>(() => checkpointer.Load(_dir.Sub("model_0000004")));
        Assert.Equal(_dir.Sub("model_0000004"), folder.LinkPath);
        var file = Assert.Throws<SymbolicLinkRefusedException>(() => checkpointer.ResumeOrLoad("", resume: true));
        Assert.Equal(shard, file.LinkPath);
    }

    [Fact]
    public void A_save_collects_what_killed_saves_left_and_nothing_else()
    {
        var checkpointer = SaveTwo();
        var orphan = StoreLayout.ShardName(0, 1, "deadbeef");
        // Killed saves: a temporary shard and a finished shard without a manifest, a temporary manifest, a temporary tag.
        Directory.CreateDirectory(_dir.Sub("model_0000014"));
        File.WriteAllText(_dir.Sub($"model_0000014/.{StoreLayout.ShardName(0, 2, "0badf00d")}.tmp-{Guid.NewGuid():N}"), "partial");
        File.WriteAllText(_dir.Sub($"model_0000014/{StoreLayout.ShardName(1, 2, "0badf00d")}"), "whole but uncommitted");
        File.WriteAllText(_dir.Sub($"model_0000009/.manifest.json.tmp-{Guid.NewGuid():N}"), "{");
        File.WriteAllText(_dir.Sub($"model_0000009/{orphan}"), "superseded attempt");
        File.WriteAllText(_dir.Sub($".last_checkpoint.tmp-{Guid.NewGuid():N}"), "model_00");
        // The user's things, some with our names.
        Directory.CreateDirectory(_dir.Sub("inference"));
        File.WriteAllText(_dir.Sub("inference/results.json"), "[]");
        File.WriteAllText(_dir.Sub($"inference/{orphan}"), "looks like ours, is not");
        Directory.CreateDirectory(_dir.Sub("empty_by_user"));
        File.WriteAllText(_dir.Sub("metrics.json"), "{}");
        File.WriteAllText(_dir.Sub(".gitignore"), "*");

        checkpointer.Save("model_0000019", At(19));

        Assert.Equal([".gitignore", "empty_by_user", "inference", "last_checkpoint", "metrics.json", "model_0000004", "model_0000009", "model_0000019"],
            Directory.GetFileSystemEntries(_dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(2, Directory.GetFiles(_dir.Sub("model_0000009")).Length); // its manifest and the shard it references
        Assert.False(File.Exists(_dir.Sub($"model_0000009/{orphan}")));
        Assert.True(File.Exists(_dir.Sub($"inference/{orphan}")));
        Assert.Equal(4L, new Checkpointer(Models.Small(), _dir.Path).Load(_dir.Sub("model_0000004"))["iteration"]);
    }

    [Fact]
    public void A_save_while_another_writer_holds_the_folder_fails_at_once_writes_nothing_and_collects_nothing()
    {
        var checkpointer = SaveTwo();
        var temp = _dir.Sub($"model_0000014/.{StoreLayout.ShardName(0, 1, "0badf00d")}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_dir.Sub("model_0000014"));
        File.WriteAllText(temp, "being written by a live process");

        using (var liveWriter = DirectoryHandle.Open(_dir.Path))
        {
            Assert.Equal(FolderLock.Taken, liveWriter.TryLockExclusive());
            var busy = Assert.Throws<SaveFolderBusyException>(() => checkpointer.Save("model_0000019", At(19)));
            Assert.Equal(_dir.Path, busy.Folder);
            Assert.False(Directory.Exists(_dir.Sub("model_0000019")));
            Assert.Equal("model_0000009", File.ReadAllText(Tag));
            Assert.True(File.Exists(temp));
        }
        checkpointer.Save("model_0000024", At(24));
        Assert.False(Directory.Exists(_dir.Sub("model_0000014")));
        Assert.Equal("model_0000024", File.ReadAllText(Tag));
    }

    /// <summary>
    /// Two processes saving into one folder would delete each other's superseded shards (the tagged checkpoint's among
    /// them). A real second process holds the folder's lock (flock(1)): a save fails at once and writes nothing; once that
    /// process is killed, the kernel has dropped its lock and saving works again.
    /// </summary>
    [Fact]
    public async Task A_second_process_writing_the_folder_makes_a_save_fail_and_a_killed_writer_leaves_no_lock_behind()
    {
        var checkpointer = SaveTwo();
        var before = Directory.GetFileSystemEntries(_dir.Path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        using var other = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("flock", ["--exclusive", "--no-fork", _dir.Path, "-c", "echo locked; exec sleep 120"])
        {
            RedirectStandardOutput = true,
        }) ?? throw new InvalidOperationException("flock(1) did not start (util-linux)");
        try
        {
            Assert.Equal("locked", await other.StandardOutput.ReadLineAsync());
            Assert.Throws<SaveFolderBusyException>(() => checkpointer.Save("model_0000019", At(19)));
            Assert.Throws<SaveFolderBusyException>(() => checkpointer.TagLastCheckpoint("model_0000004"));
            Assert.Equal(before, Directory.GetFileSystemEntries(_dir.Path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal));
        }
        finally
        {
            other.Kill(entireProcessTree: true); // SIGKILL: the writer dies holding the lock
            await other.WaitForExitAsync();
        }
        checkpointer.Save("model_0000019", At(19));
        Assert.Equal("model_0000019", File.ReadAllText(Tag));
        Assert.Equal(19L, new Checkpointer(Models.Small(), _dir.Path).Load(_dir.Sub("model_0000019"))["iteration"]);
    }

    [Fact]
    public async Task Saves_of_one_process_into_one_folder_run_side_by_side_and_both_commit()
    {
        var first = new Checkpointer(Models.Small(), _dir.Path);
        var second = new Checkpointer(Models.Small(), _dir.Path);

        await Task.WhenAll(Task.Run(() => first.SaveAsync("model_0000004", At(4))), Task.Run(() => second.SaveAsync("model_0000009", At(9))));

        Assert.Equal(4L, new Checkpointer(Models.Small(), _dir.Path).Load(_dir.Sub("model_0000004"))["iteration"]);
        Assert.Equal(9L, new Checkpointer(Models.Small(), _dir.Path).Load(_dir.Sub("model_0000009"))["iteration"]);
    }

    [Fact]
    public void Leftovers_younger_than_the_minimum_age_are_kept_for_writers_that_take_no_lock()
    {
        var checkpointer = new Checkpointer(Models.Small(), _dir.Path);
        Directory.CreateDirectory(_dir.Sub("model_0000014"));
        string[] leftovers = [_dir.Sub($"model_0000014/.{StoreLayout.ShardName(0, 2, "0badf00d")}.tmp-{Guid.NewGuid():N}"),
            _dir.Sub($"model_0000014/{StoreLayout.ShardName(1, 2, "0badf00d")}"), _dir.Sub($".last_checkpoint.tmp-{Guid.NewGuid():N}")];
        foreach (var file in leftovers) File.WriteAllText(file, "being written by `ckpt convert`");

        checkpointer.Save("model_0000019", At(19));
        Assert.All(leftovers, file => Assert.True(File.Exists(file)));

        foreach (var file in leftovers) File.SetLastWriteTimeUtc(file, DateTime.UtcNow - LocalBackendOptions.DefaultLeftoverMinimumAge - TimeSpan.FromMinutes(1));
        checkpointer.Save("model_0000024", At(24));
        Assert.All(leftovers, file => Assert.False(File.Exists(file)));
        Assert.False(Directory.Exists(_dir.Sub("model_0000014")));
    }

    [Fact]
    public void A_checkpoint_folder_that_cannot_be_collected_fails_no_later_save()
    {
        var checkpointer = SaveTwo();
        var shard = _dir.Sub($"model_0000014/{StoreLayout.ShardName(0, 1, "0badf00d")}");
        Directory.CreateDirectory(_dir.Sub("model_0000014"));
        File.WriteAllText(shard, "kept: its manifest cannot be read");
        File.WriteAllText(Path.Combine(_elsewhere.Path, "manifest.json"), "{}");
        File.CreateSymbolicLink(_dir.Sub("model_0000014/manifest.json"), Path.Combine(_elsewhere.Path, "manifest.json"));

        checkpointer.Save("model_0000019", At(19));

        Assert.Equal("model_0000019", File.ReadAllText(Tag));
        Assert.True(File.Exists(shard));
    }

    [Fact]
    public void Tagging_while_another_writer_holds_the_folder_fails_and_keeps_the_tag()
    {
        var checkpointer = SaveTwo();
        using var collector = DirectoryHandle.Open(_dir.Path);
        Assert.Equal(FolderLock.Taken, collector.TryLockExclusive());

        Assert.Throws<SaveFolderBusyException>(() => checkpointer.TagLastCheckpoint("model_0000004"));

        Assert.Equal("model_0000009", File.ReadAllText(Tag));
    }
}
