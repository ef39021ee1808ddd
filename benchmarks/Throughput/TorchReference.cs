using System.Diagnostics;
using System.Globalization;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// torch.save / torch.load of a state dict shaped like ours (same tensor count and sizes), run by
/// Debian's python3-torch (/usr/bin/python3, or the interpreter named by CKPT_TORCH_PYTHON, e.g. a
/// CUDA PyTorch on a GPU machine). The script times itself, so interpreter start-up and
/// building the tensors stay outside the figure.
/// </summary>
public sealed class TorchReference(string folder, int tensors, long elements)
{
    private static readonly string Python = Environment.GetEnvironmentVariable("CKPT_TORCH_PYTHON") is { Length: > 0 } chosen ? chosen : "/usr/bin/python3";

    private const string Script = """
        import os, sys, time, torch
        mode, path, tensors, elements = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        if mode == "save":
            state = {f"t{i:02d}": torch.rand(elements) for i in range(tensors)}
            start = time.perf_counter()
            torch.save(state, path)
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        else:
            fd = os.open(path, os.O_RDONLY)
            if mode == "load_cold":
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            else:
                with open(path, "rb") as f:
                    while f.read(8 << 20):
                        pass
            os.close(fd)
            start = time.perf_counter()
            torch.load(path)
        print(time.perf_counter() - start)
        """;

    private string PthPath => Path.Combine(folder, "torch.pth");

    public static void ThrowIfMissing()
    {
        if (!File.Exists(Python)) throw new InvalidOperationException($"{Python} is missing: the torch reference needs Debian's python3-torch (scripts/bootstrap.sh installs it: apt-get install python3-torch).");
    }

    public Task<double> SaveAsync() => RunAsync("save");

    public async Task<double> LoadColdAsync()
    {
        await EnsureSavedAsync();
        return await RunAsync("load_cold");
    }

    public async Task<double> LoadWarmAsync()
    {
        await EnsureSavedAsync();
        return await RunAsync("load_warm");
    }

    /// <summary>The load rows read what the save row writes; run alone, they write it first (untimed).</summary>
    private async Task EnsureSavedAsync()
    {
        if (!File.Exists(PthPath)) await SaveAsync();
    }

    private async Task<double> RunAsync(string mode)
    {
        var info = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "-c", Script, mode, PthPath, tensors.ToString(CultureInfo.InvariantCulture), elements.ToString(CultureInfo.InvariantCulture) }) info.ArgumentList.Add(arg);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {Python}");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) throw new InvalidOperationException($"torch {mode} reference failed (exit {process.ExitCode}): {(await error).Trim()}");
        return double.Parse((await output).Trim(), CultureInfo.InvariantCulture);
    }
}
