using System.Runtime.InteropServices;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// Native memory never written before (a large allocation is fresh pages from the kernel, returned on dispose), for references
/// that must pay the first-touch page faults our loads pay when they fill new tensors. Aligned to 2 MiB and advised for
/// transparent huge pages, as our new tensors are (Core's HugePages).
/// </summary>
internal sealed unsafe partial class FreshMemory : IDisposable
{
    private const int HugePage = 2 << 20;
    private const int AdviseHugePage = 14; // MADV_HUGEPAGE
    private readonly byte* _start;
    private readonly nuint _length;

    private FreshMemory(byte* start, nuint length)
    {
        _start = start;
        _length = length;
    }

    public static FreshMemory Allocate(nuint length)
    {
        var start = (byte*)NativeMemory.AlignedAlloc(length, HugePage);
        if (OperatingSystem.IsLinux()) _ = MAdvise((nint)start, length, AdviseHugePage);
        return new FreshMemory(start, length);
    }

    /// <summary>The memory as a span-able region, for positional reads.</summary>
    public Memory<byte> Slice(long offset, int length) => new UnmanagedMemoryManager(_start + offset, length).Memory;

    /// <summary>A writable stream over [<paramref name="offset"/>, +<paramref name="length"/>).</summary>
    public Stream Stream(long offset, int length)
    {
        if (offset < 0 || (nuint)(offset + length) > _length) throw new ArgumentOutOfRangeException(nameof(offset));
        return new UnmanagedMemoryStream(_start + offset, length, length, FileAccess.Write);
    }

    public void Dispose() => NativeMemory.AlignedFree(_start);

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int MAdvise(nint address, nuint length, int advice);

    private sealed class UnmanagedMemoryManager(byte* start, int length) : System.Buffers.MemoryManager<byte>
    {
        public override Span<byte> GetSpan() => new(start, length);
        public override System.Buffers.MemoryHandle Pin(int elementIndex = 0) => new(start + elementIndex);
        public override void Unpin() { }
        protected override void Dispose(bool disposing) { }
    }
}
