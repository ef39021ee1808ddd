using Checkpointing.Formats;
using TorchSharp;

namespace Checkpointing.Core.Tests;

public sealed class HugePagesTests
{
    private static long AnonHugePagesKiB() =>
        long.Parse(File.ReadLines("/proc/self/smaps_rollup").First(l => l.StartsWith("AnonHugePages:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

    [Fact]
    public void Fresh_tensors_for_loading_are_backed_by_huge_pages_where_the_kernel_allows_it()
    {
        var mode = File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled"); // e.g. "always [madvise] never"
        var before = AnonHugePagesKiB();

        var (value, _) = TorchTensors.Allocate("w", TensorDType.F32, [32L << 20]); // 128 MiB, not touched yet
        using var tensor = (torch.Tensor)value;
        tensor.fill_(1.0f); // the first touch: faults in 2 MiB pages when advised
        var grown = AnonHugePagesKiB() - before;

        if (mode.Contains("[never]", StringComparison.Ordinal)) Assert.Equal(0, grown); // the hint changes nothing
        else Assert.True(grown >= 64 << 10, $"THP is '{mode.Trim()}' but only {grown} KiB of the 128 MiB tensor are huge pages");
    }
}
