namespace Checkpointing.Storage.Tests;

/// <summary>The folder store never follows a symbolic link below its root, and collects only its own temporary files.</summary>
public sealed class FileSystemStoreSafetyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("fs-store-safety-").FullName;
    private readonly string _elsewhere = Directory.CreateTempSubdirectory("fs-store-elsewhere-").FullName;
    private readonly FileSystemStore _store;

    public FileSystemStoreSafetyTests()
    {
        _store = new FileSystemStore(Path.Combine(_dir, "save"));
        File.WriteAllText(Path.Combine(_elsewhere, "manifest.json"), "{}");
        File.WriteAllText(Path.Combine(_elsewhere, "precious.txt"), "not yours");
    }

    public void Dispose()
    {
        Directory.Delete(_dir, recursive: true);
        Directory.Delete(_elsewhere, recursive: true);
    }

    private string Save(string relative) => Path.Combine(_store.Root, relative);

    [Fact]
    public async Task A_symlinked_folder_is_not_listed_and_every_operation_through_it_is_refused()
    {
        await _store.WriteTextAsync("real/manifest.json", "{}");
        Directory.CreateSymbolicLink(Save("linked"), _elsewhere);

        var listed = new List<string>();
        await foreach (var e in _store.ListAsync("")) listed.Add(e.Key);
        Assert.Equal(["real/manifest.json"], listed);

        var refused = await Assert.ThrowsAsync<SymbolicLinkRefusedException>(() => _store.DeleteAsync("linked/precious.txt"));
        Assert.Equal(Save("linked"), refused.LinkPath);
        Assert.Contains("symbolic link", refused.Message);
        await Assert.ThrowsAsync<SymbolicLinkRefusedException>(() => _store.GetEntryAsync("linked/manifest.json"));
        await Assert.ThrowsAsync<SymbolicLinkRefusedException>(() => _store.OpenReadAsync("linked/manifest.json"));
        await Assert.ThrowsAsync<SymbolicLinkRefusedException>(() => _store.ReadRangeAsync("linked/manifest.json", 0, new byte[1]));
        await Assert.ThrowsAsync<SymbolicLinkRefusedException>(() => _store.WriteTextAsync("linked/manifest.json", "overwritten"));
        await Assert.ThrowsAsync<SymbolicLinkRefusedException>(async () => { await foreach (var _ in _store.ListAsync("linked/")) { } });

        Assert.Equal("not yours", File.ReadAllText(Path.Combine(_elsewhere, "precious.txt")));
        Assert.Equal("{}", File.ReadAllText(Path.Combine(_elsewhere, "manifest.json")));
    }

    [Fact]
    public async Task A_symlinked_file_is_refused()
    {
        await _store.WriteTextAsync("ck/manifest.json", "{}");
        File.CreateSymbolicLink(Save("ck/shard"), Path.Combine(_elsewhere, "precious.txt"));

        await Assert.ThrowsAsync<SymbolicLinkRefusedException>(() => _store.OpenReadAsync("ck/shard"));
        await Assert.ThrowsAsync<SymbolicLinkRefusedException>(() => _store.DeleteAsync("ck/shard"));
        Assert.True(File.Exists(Path.Combine(_elsewhere, "precious.txt")));
    }

    [Fact]
    public async Task Only_temporary_files_of_this_store_are_collected()
    {
        await _store.WriteTextAsync("ck/manifest.json", "{}");
        var ours = $".manifest.json.tmp-{Guid.NewGuid():N}";
        var oursOtherTarget = $".notes.txt.tmp-{Guid.NewGuid():N}";
        string[] foreign = [".gitignore", ".manifest.json.tmp-short", ".tmp-" + Guid.NewGuid().ToString("N"), "visible.tmp-" + Guid.NewGuid().ToString("N")];
        foreach (var name in foreign.Append(ours).Append(oursOtherTarget)) File.WriteAllText(Save(Path.Combine("ck", name)), "x");

        Assert.Equal([ours], _store.DeleteTemporaryFiles("ck", target => target == "manifest.json", TimeSpan.Zero));

        Assert.Equal(foreign.Append(oursOtherTarget).Append("manifest.json").Order(StringComparer.Ordinal),
            Directory.GetFiles(Save("ck")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_folder_with_anything_in_it_is_not_removed_as_empty()
    {
        Directory.CreateDirectory(Save("a"));
        File.WriteAllText(Save("a/.hidden"), "x");
        Directory.CreateDirectory(Save("b"));

        Assert.False(_store.DeleteFolderIfEmpty("a"));
        Assert.True(_store.DeleteFolderIfEmpty("b"));
        Assert.True(File.Exists(Save("a/.hidden")));
        Assert.False(Directory.Exists(Save("b")));
    }

    [Fact]
    public async Task Two_writes_into_a_new_folder_that_both_fail_leave_no_folder_whichever_fails_first()
    {
        // The shards of one checkpoint: the first write creates the folder and fails while the second still has its file there.
        var secondStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstFailed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = _store.WriteAsync("ck/shard-0", async (stream, _) =>
        {
            stream.WriteByte(1);
            await secondStarted.Task;
            throw new IOException("disk full on shard 0");
        });
        while (!Directory.Exists(Save("ck"))) await Task.Delay(1);
        var second = _store.WriteAsync("ck/shard-1", async (stream, _) =>
        {
            stream.WriteByte(2);
            secondStarted.SetResult();
            await firstFailed.Task;
            throw new IOException("disk full on shard 1");
        });

        await Assert.ThrowsAsync<IOException>(() => first);
        Assert.True(Directory.Exists(Save("ck")), "the second write's file keeps the folder while it runs");
        firstFailed.SetResult();
        await Assert.ThrowsAsync<IOException>(() => second);

        Assert.Empty(Directory.EnumerateFileSystemEntries(_store.Root, "*", SearchOption.AllDirectories)); // no folder, no temporary file
    }

    [Fact]
    public async Task A_failed_write_leaves_a_folder_that_holds_other_objects()
    {
        await _store.WriteTextAsync("ck/manifest.json", "{}");

        await Assert.ThrowsAsync<IOException>(() => _store.WriteAsync("ck/shard-0", (_, _) => throw new IOException("disk full")));

        Assert.Equal(["manifest.json"], Directory.EnumerateFileSystemEntries(Save("ck")).Select(Path.GetFileName));
    }

    [Fact]
    public void A_directory_flushes_and_a_missing_one_fails_naming_it()
    {
        DirectoryHandle.Flush(_store.Root);
        var missing = Save("absent");
        var e = Assert.Throws<IOException>(() => DirectoryHandle.Flush(missing));
        Assert.Contains(missing, e.Message);
    }

    [Fact]
    public void The_exclusive_folder_lock_excludes_other_handles_until_released()
    {
        using var first = DirectoryHandle.Open(_store.Root);
        using var second = DirectoryHandle.Open(_store.Root);
        Assert.Equal(FolderLock.Taken, first.TryLockExclusive());
        Assert.Equal(FolderLock.HeldElsewhere, second.TryLockExclusive());
        first.Unlock();
        Assert.Equal(FolderLock.Taken, second.TryLockExclusive());
        Assert.Equal(FolderLock.HeldElsewhere, first.TryLockExclusive());
    }

    [Fact]
    public void Disposing_a_locked_handle_releases_the_lock_even_while_a_child_being_started_still_shares_its_descriptor()
    {
        var first = DirectoryHandle.Open(_store.Root);
        Assert.Equal(FolderLock.Taken, first.TryLockExclusive());
        using var child = InheritedDescriptor.Of(_store.Root); // a process started at this moment, not yet at exec
        first.Dispose();

        using var next = DirectoryHandle.Open(_store.Root);
        Assert.Equal(FolderLock.Taken, next.TryLockExclusive());
    }

    [Fact]
    public void A_folder_whose_file_system_cannot_fsync_folders_flushes_without_error()
    {
        DirectoryHandle.Flush("/proc"); // fsync of a procfs folder fails with EINVAL, as on some network and FUSE file systems
    }

    [Fact]
    public void A_failed_folder_call_carries_its_errno_in_HResult_as_dotnet_does_for_ENOSPC_and_EROFS()
    {
        File.WriteAllText(Save("file"), "not a folder");
        Assert.Equal(2, Assert.Throws<IOException>(() => DirectoryHandle.Open(Save("missing"))).HResult); // ENOENT
        Assert.Equal(20, Assert.Throws<IOException>(() => DirectoryHandle.Open(Save("file"))).HResult); // ENOTDIR: opened with O_DIRECTORY
    }

    [Fact]
    public void Temporary_files_younger_than_the_minimum_age_are_kept()
    {
        Directory.CreateDirectory(Save("ck"));
        var young = $".manifest.json.tmp-{Guid.NewGuid():N}";
        var old = $".manifest.json.tmp-{Guid.NewGuid():N}";
        File.WriteAllText(Save($"ck/{young}"), "{");
        File.WriteAllText(Save($"ck/{old}"), "{");
        File.SetLastWriteTimeUtc(Save($"ck/{old}"), DateTime.UtcNow.AddHours(-1));

        Assert.Equal([old], _store.DeleteTemporaryFiles("ck", _ => true, TimeSpan.FromMinutes(10)));
        Assert.True(File.Exists(Save($"ck/{young}")));
    }
}
