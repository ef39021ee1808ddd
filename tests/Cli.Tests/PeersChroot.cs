using System.Diagnostics;

namespace Checkpointing.Cli.Tests;

/// <summary>The official readers (PyTorch 2, safetensors) in scripts/peers.sh's chroot, for tests that check what they see.</summary>
internal static class PeersChroot
{
    public const string Root = "/var/lib/ckpt-peers";

    /// <summary>A fresh folder inside the chroot, so that its Python sees the files under the same path less the root.</summary>
    public static string NewFolder(string prefix) => Directory.CreateDirectory(Path.Combine(Root, "tmp", $"{prefix}-{Guid.NewGuid():N}")).FullName;

    /// <summary>Fails naming the install step when the chroot is not there.</summary>
    public static void RequireReady() =>
        Assert.True(File.Exists(Path.Combine(Root, ".ckpt-peers-ready")), "the peers' chroot is missing: run scripts/peers.sh (as root; scripts/test.sh runs it)");

    /// <summary>Runs <paramref name="script"/> with the chroot's python3, each path of <paramref name="paths"/> (inside the chroot) as an argument; returns its output.</summary>
    public static string Python(string script, params string[] paths)
    {
        var info = new ProcessStartInfo("chroot") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { Root, "/usr/bin/python3", "-c", script }.Concat(paths.Select(path => "/" + Path.GetRelativePath(Root, path)))) info.ArgumentList.Add(arg);
        info.Environment["UCX_LOG_LEVEL"] = "fatal";
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"python in the peers' chroot failed: {error}");
        return output.Result;
    }
}
