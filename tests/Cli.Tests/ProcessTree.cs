namespace Checkpointing.Cli.Tests;

/// <summary>What any local user sees of a process's descendants: their command lines in /proc.</summary>
public static class ProcessTree
{
    /// <summary>Adds the command line of every descendant of <paramref name="root"/> seen until <paramref name="stop"/>.</summary>
    public static async Task WatchDescendantsAsync(int root, HashSet<string> commandLines, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            foreach (var pid in Descendants(root))
            {
                if (CommandLine(pid) is { Length: > 0 } line) commandLines.Add(line);
            }
            try { await Task.Delay(50, stop); }
            catch (OperationCanceledException) { }
        }
    }

    /// <summary>The PIDs of every process below <paramref name="root"/> now.</summary>
    public static HashSet<int> Descendants(int root)
    {
        var parentOf = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out var pid) && ParentOf(pid) is { } parent) parentOf[pid] = parent;
        }
        var tree = new HashSet<int> { root };
        for (var grew = true; grew;)
        {
            grew = false;
            foreach (var (pid, parent) in parentOf) grew |= tree.Contains(parent) && tree.Add(pid);
        }
        tree.Remove(root);
        return tree;
    }

    private static int? ParentOf(int pid) => StatFields(pid) is { } fields && int.TryParse(fields[1], out var parent) ? parent : null;

    /// <summary>/proc/PID/stat after "pid (comm) ": state, ppid, …; comm may hold spaces and parentheses, so read after the last ')'.</summary>
    private static string[]? StatFields(int pid) => ReadOrNull($"/proc/{pid}/stat") is { } stat ? stat[(stat.LastIndexOf(')') + 2)..].Split(' ') : null;

    private static string? CommandLine(int pid) => ReadOrNull($"/proc/{pid}/cmdline")?.Replace('\0', ' ').Trim();

    private static string? ReadOrNull(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Whether a process with this PID is alive: it exists and is not a zombie (ended, not yet reaped).</summary>
    public static bool IsRunning(int pid) => StatFields(pid) is { } fields && fields[0] != "Z";
}
