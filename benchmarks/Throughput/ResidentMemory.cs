using System.Globalization;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>This process's resident memory and its peak, from /proc (Linux).</summary>
public static class ResidentMemory
{
    /// <summary>Resets the peak (VmHWM) to the current resident size, so the next <see cref="PeakBytes"/> covers only what follows.</summary>
    public static void ResetPeak() => File.WriteAllText("/proc/self/clear_refs", "5");

    public static long CurrentBytes() => Status("VmRSS:");

    public static long PeakBytes() => Status("VmHWM:");

    private static long Status(string field)
    {
        var line = File.ReadLines("/proc/self/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
    }
}
