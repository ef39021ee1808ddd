using System.Diagnostics;

namespace Checkpointing.Cli.Tests;

/// <summary>A small tmpfs mounted for one test (the tests run as root): a real disk that fills up or turns read-only.</summary>
public sealed class Tmpfs : IDisposable
{
    private Tmpfs(string path) => Path = path;

    public string Path { get; }

    public static Tmpfs Mount(long bytes)
    {
        var dir = Directory.CreateTempSubdirectory("ckpt-tmpfs-").FullName;
        Run("mount", "-t", "tmpfs", "-o", $"size={bytes}", "tmpfs", dir);
        return new Tmpfs(dir);
    }

    public void RemountReadOnly() => Run("mount", "-o", "remount,ro", Path);

    public void Dispose()
    {
        Run("umount", Path);
        Directory.Delete(Path);
    }

    private static void Run(string command, params string[] args)
    {
        var info = new ProcessStartInfo(command) { RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {command}");
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{command} {string.Join(' ', args)} failed with {process.ExitCode}: {error} " +
            "(these tests mount their own tmpfs: run them as root, with mount from util-linux)");
    }
}
