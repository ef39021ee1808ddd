using System.Globalization;
using System.Runtime.InteropServices;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>CPU time of a process (user + system) read from <c>/proc/PID/stat</c>; Linux only.</summary>
public static partial class ProcessCpu
{
    private const int ClockTicksName = 2; // _SC_CLK_TCK

    private static readonly double TicksPerSecond = SysConf(ClockTicksName) is > 0 and var ticks ? ticks : 100;

    /// <summary>Seconds of CPU the process has used so far.</summary>
    public static double Seconds(int pid)
    {
        string stat;
        try { stat = File.ReadAllText($"/proc/{pid}/stat"); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { throw new InvalidOperationException($"process {pid} has ended", e); }
        // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing ')'.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // utime and stime are fields 14 and 15 of the line; field 3 (state) is fields[0] here.
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return ticks / TicksPerSecond;
    }

    /// <summary>A child of this process whose command line contains <paramref name="marker"/>, e.g. Azurite's node started by <c>Azurite.StartAsync</c>.</summary>
    public static int FindChild(string marker)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) continue;
            try
            {
                var stat = File.ReadAllText($"{dir}/stat");
                var parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
                if (parent == Environment.ProcessId && File.ReadAllText($"{dir}/cmdline").Replace('\0', ' ').Contains(marker, StringComparison.Ordinal)) return pid;
            }
            catch (IOException) { } // the process ended while we looked
        }
        throw new InvalidOperationException($"no child process with '{marker}' on its command line");
    }

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long SysConf(int name);
}
