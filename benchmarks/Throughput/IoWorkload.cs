using System.Diagnostics;
using System.Globalization;
using Checkpointing.Abstractions;
using Checkpointing.Cli;
using Checkpointing.Core;
using Checkpointing.Storage;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// The local half of <c>ckpt-bench io</c>: a model of float32 buffers in a temporary folder, our
/// save / load / async save of it, and the references doing the same work with the same bytes.
/// </summary>
internal sealed class IoWorkload : IDisposable
{
    private const string Name = "bench";
    private readonly Action<string> _say;
    private readonly BenchModel _model;
    private readonly Checkpointer _checkpointer;
    private readonly Checkpointer _asyncCheckpointer;
    private nint _buffer;

    public IoWorkload(int tensors, long elements, int shards, DeviceType device, Action<string> say)
    {
        if (elements * 4 > 1L << 30) throw new UsageException("each tensor must stay under 1 GiB: use more --tensors for this --size-mib", "ckpt-bench io");
        _say = say;
        Folder = Directory.CreateTempSubdirectory("ckpt-bench-io-").FullName;
        _model = new BenchModel(tensors, elements);
        if (device != DeviceType.CPU) _model.to(device);
        StateBytes = _model.buffers().Sum(b => b.numel() * b.ElementSize);
        var write = new Formats.NativeWriteOptions { ShardCount = shards };
        _checkpointer = new Checkpointer(_model, Path.Combine(Folder, "local")) { WriteOptions = write };
        _asyncCheckpointer = new Checkpointer(_model, Path.Combine(Folder, "async")) { WriteOptions = write, AsyncSave = true };
    }

    public string Folder { get; }
    public nn.Module Model => _model;
    public long StateBytes { get; }
    public long ArenaBytes => _asyncCheckpointer.SnapshotArenaBytes;
    public Formats.NativeWriteOptions WriteOptions => _checkpointer.WriteOptions;

    private string SavedPath => Path.Combine(Folder, "local", Name);

    /// <summary>One save and one load, each with the peak reset first. Run before anything else allocates, so the peaks are ours.</summary>
    public PeakMemory MeasurePeakMemory(long baseline)
    {
        ResidentMemory.ResetPeak();
        _checkpointer.Save(Name);
        var save = ResidentMemory.PeakBytes() - baseline;
        GC.Collect();
        ResidentMemory.ResetPeak();
        _checkpointer.Load(SavedPath);
        var load = ResidentMemory.PeakBytes() - baseline;
        _say($"peak RSS over the process before the model: save {save >> 20} MiB, load {load >> 20} MiB (state {StateBytes >> 20} MiB)");
        return new PeakMemory(save, load);
    }

    private int _saves;

    /// <summary>
    /// A save of a new checkpoint, as training does. The previous one is deleted first, outside the timing,
    /// as the references delete their files: unlinking a large file costs ~1 s/GiB on this disk.
    /// </summary>
    public Task<double> LocalSaveAsync()
    {
        var previous = Path.Combine(Folder, "local", $"save-{_saves}");
        if (Directory.Exists(previous)) Directory.Delete(previous, recursive: true);
        var name = $"save-{++_saves}";
        return InterleavedPairs.Time(() => _checkpointer.Save(name));
    }

    public Task<double> FileStreamWriteAsync()
    {
        var path = Path.Combine(Folder, "filestream.bin");
        File.Delete(path);
        CopyIntoBuffer();
        return InterleavedPairs.Time(() =>
        {
            using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
            WriteBuffer(stream);
            stream.Flush(flushToDisk: true);
        });
    }

    /// <summary>Writes the host copy of the state straight from its memory (no staging copy: the reference must not do more than we do).</summary>
    private unsafe void WriteBuffer(Stream destination)
    {
        var buffer = (byte*)Buffer();
        for (long at = 0; at < StateBytes; at += 1 << 30) destination.Write(new ReadOnlySpan<byte>(buffer + at, (int)Math.Min(1 << 30, StateBytes - at)));
    }

    public async Task<double> DdAsync()
    {
        var path = Path.Combine(Folder, "dd.bin");
        File.Delete(path);
        var blocks = (StateBytes + (8 << 20) - 1) / (8 << 20);
        return await InterleavedPairs.Time(async () =>
        {
            var info = new ProcessStartInfo("dd") { UseShellExecute = false, RedirectStandardError = true };
            foreach (var arg in new[] { "if=/dev/zero", $"of={path}", "bs=8M", $"count={blocks.ToString(CultureInfo.InvariantCulture)}", "conv=fdatasync", "status=none" }) info.ArgumentList.Add(arg);
            using var dd = Process.Start(info) ?? throw new InvalidOperationException("could not start dd");
            await dd.WaitForExitAsync();
            if (dd.ExitCode != 0) throw new InvalidOperationException($"dd failed: {await dd.StandardError.ReadToEndAsync()}");
        });
    }

    public Task<double> LoadColdAsync()
    {
        PageCache.EvictFolder(SavedPath);
        return InterleavedPairs.Time(() => _checkpointer.Load(SavedPath));
    }

    public Task<double> LoadWarmAsync()
    {
        PageCache.Warm(SavedPath);
        return InterleavedPairs.Time(() => _checkpointer.Load(SavedPath));
    }

    /// <summary>
    /// The floor of a load into new memory: the checkpoint's files read with positional reads of the same size and parallelism
    /// as ours (a folder store's preference) into fresh memory (huge-page advised, as our tensors), no checksum, nothing parsed. Warm or cold as <paramref name="cold"/> says.
    /// </summary>
    public Task<double> ReadIntoFreshAsync(bool cold)
    {
        if (cold) PageCache.EvictFolder(SavedPath);
        else PageCache.Warm(SavedPath);
        ICheckpointStore folder = new FileSystemStore(SavedPath); // its preferences are what our local loads read with
        var (pieceBytes, inFlight) = (folder.PreferredReadBytes, folder.PreferredReadsInFlight);
        return InterleavedPairs.Time(async () =>
        {
            foreach (var file in Directory.EnumerateFiles(SavedPath))
            {
                using var handle = File.OpenHandle(file);
                var length = RandomAccess.GetLength(handle);
                using var fresh = FreshMemory.Allocate((nuint)Math.Max(1, length));
                var pieces = Enumerable.Range(0, (int)((length + pieceBytes - 1) / pieceBytes));
                await Parallel.ForEachAsync(pieces, new ParallelOptions { MaxDegreeOfParallelism = inFlight }, async (piece, ct) =>
                {
                    var offset = (long)piece * pieceBytes;
                    var destination = fresh.Slice(offset, (int)Math.Min(pieceBytes, length - offset));
                    for (var done = 0; done < destination.Length;) done += await RandomAccess.ReadAsync(handle, destination[done..], offset + done, ct);
                });
            }
        });
    }

    /// <summary>The first async save allocates the arena; training pays that once, the benchmark outside its timings.</summary>
    public async Task WarmArenaAsync()
    {
        await _asyncCheckpointer.SaveAsync(Name);
        await _asyncCheckpointer.WaitForPendingSaveAsync();
    }

    /// <summary>How long <c>SaveAsync</c> blocks the training loop; the background write then finishes outside the timing.</summary>
    public async Task<double> AsyncStallAsync()
    {
        var stall = await InterleavedPairs.Time(() => _asyncCheckpointer.SaveAsync(Name));
        await _asyncCheckpointer.WaitForPendingSaveAsync();
        return stall;
    }

    /// <summary>A host copy of the state into memory allocated and touched beforehand: memcpy, or for a CUDA model the device-to-host copy into pinned tensors.</summary>
    public Task<double> MemcpyAsync()
    {
        if (_model.buffers().First().device_type == DeviceType.CPU)
        {
            _ = Buffer(); // allocated and touched outside the timing
            return InterleavedPairs.Time(CopyIntoBuffer);
        }
        _pinned ??= _model.buffers().Select(b => { using var host = empty_like(b, device: CPU); return host.pin_memory(); }).ToList();
        return InterleavedPairs.Time(() =>
        {
            foreach (var (host, device) in _pinned.Zip(_model.buffers())) host.copy_(device);
        });
    }

    private List<Tensor>? _pinned;

    /// <summary>A stream over a native, pre-touched buffer of the state's size; after <see cref="MemcpyAsync"/> or <see cref="CopyIntoBuffer"/> it holds the state's bytes.</summary>
    public unsafe UnmanagedMemoryStream BufferStream(FileAccess access, long offset, long length) =>
        new((byte*)Buffer() + offset, access == FileAccess.Read ? length : 0, length, access);

    private unsafe nint Buffer()
    {
        if (_buffer == 0)
        {
            var buffer = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)StateBytes);
            for (long at = 0; at < StateBytes; at += int.MaxValue) new Span<byte>(buffer + at, (int)Math.Min(int.MaxValue, StateBytes - at)).Fill(1);
            _buffer = (nint)buffer;
        }
        return _buffer;
    }

    public unsafe void CopyIntoBuffer()
    {
        var at = (byte*)Buffer();
        foreach (var tensor in _model.buffers())
        {
            using var host = tensor.cpu();
            var bytes = host.bytes;
            bytes.CopyTo(new Span<byte>(at, bytes.Length));
            at += bytes.Length;
        }
    }

    public void Dispose()
    {
        if (_buffer != 0) FreeBuffer();
        foreach (var pinned in _pinned ?? []) pinned.Dispose();
        _model.Dispose();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException e)
        {
            _say($"could not remove {Folder}: {e.Message}");
        }
    }

    private unsafe void FreeBuffer()
    {
        System.Runtime.InteropServices.NativeMemory.Free((void*)_buffer);
        _buffer = 0;
    }
}

/// <summary>A module whose state dict is <c>count</c> float32 buffers of <c>elements</c> each.</summary>
internal sealed class BenchModel : nn.Module
{
    public BenchModel(int count, long elements) : base(nameof(BenchModel))
    {
        for (var i = 0; i < count; i++) register_buffer($"t{i:D2}", rand(elements));
    }
}
