using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Checkpointing.Core;

/// <summary>
/// Asks Linux to back fresh, not yet touched tensor memory with transparent huge pages (2 MiB), as
/// PyTorch does under THP_MEM_ALLOC_ENABLE. The first write into fresh memory otherwise takes one
/// page fault per 4 KiB — about 0.66 s per GiB here, more than the copy itself — and on a 2-core
/// machine that CPU is taken from the storage server and the training loop. A hint only: where THP
/// is off ("never") or the call fails, nothing changes.
/// </summary>
public static partial class HugePages
{
    /// <summary>PyTorch's own switch: libtorch then aligns every CPU allocation of 2 MiB or more to 2 MiB and advises huge pages.</summary>
    public const string LibTorchVariable = "THP_MEM_ALLOC_ENABLE";

    /// <summary>
    /// Turns on huge pages for all of libtorch's CPU allocations in this process (<see cref="LibTorchVariable"/>=1),
    /// unless the environment already says otherwise. libtorch reads the variable once, at its first
    /// allocation, so call this before the first tensor exists (first thing in Main); later it has no effect.
    /// </summary>
    public static void EnableForLibTorch()
    {
        if (OperatingSystem.IsLinux()) _ = SetEnv(LibTorchVariable, "1", overwrite: 0);
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    private const int HugePageSize = 2 << 20;
    private const int AdviseHugePage = 14; // MADV_HUGEPAGE

    /// <summary>Advises the whole 2 MiB pages inside <paramref name="fresh"/>'s memory (a contiguous CPU tensor nobody wrote yet).</summary>
    internal static unsafe void Advise(Tensor fresh)
    {
        var length = fresh.numel() * fresh.ElementSize;
        if (!OperatingSystem.IsLinux() || length < 2 * HugePageSize || fresh.device_type != TorchSharp.DeviceType.CPU || !fresh.is_contiguous()) return;
        using var flat = fresh.view(-1);
        using var first = flat.narrow(0, 0, 1);
        fixed (byte* data = first.bytes)
        {
            var start = ((nint)data + HugePageSize - 1) & ~(nint)(HugePageSize - 1);
            var end = ((nint)data + (nint)length) & ~(nint)(HugePageSize - 1);
            if (end > start) _ = MAdvise(start, (nuint)(end - start), AdviseHugePage);
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int MAdvise(nint address, nuint length, int advice);
}
