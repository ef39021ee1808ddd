using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// The peers of our saves and loads on the same state (same tensor count and sizes), same disk: torch.save/torch.load (also with
/// <c>mmap=True</c>), torch.distributed.checkpoint (DCP) and safetensors' save_file/load_file, from PyTorch 2.x in the Debian
/// trixie chroot that scripts/peers.sh builds. Every load lands in a model's tensors (allocated before the clock starts), as
/// ours does: <c>copy_</c> after torch.load and load_file, in place for DCP. Each run times itself, so interpreter start-up
/// and building the state stay outside the figure; it also reports its peak RSS (VmHWM, interpreter and model included).
/// </summary>
public sealed class PeerReference(string chroot, int tensors, long elements)
{
    /// <summary>Where scripts/peers.sh builds the chroot unless told otherwise.</summary>
    public const string DefaultRoot = "/var/lib/ckpt-peers";

    private const string Script = """
        import os, sys, time, torch
        mode, folder, tensors, elements = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        kind, operation = mode.split(":")
        path = os.path.join(folder, {"torch": "state.pth", "mmap": "state.pth", "dcp": "dcp", "safetensors": "state.safetensors"}[kind])
        def files():
            return [os.path.join(path, f) for f in os.listdir(path)] if os.path.isdir(path) else [path]
        def fsync_all():
            for f in files():
                fd = os.open(f, os.O_RDONLY); os.fsync(fd); os.close(fd)
        if operation == "save":
            state = {f"t{i:02d}": torch.rand(elements) for i in range(tensors)}
            start = time.perf_counter()
            if kind == "torch": torch.save(state, path)
            elif kind == "dcp":
                import torch.distributed.checkpoint as dcp
                dcp.save(state, checkpoint_id=path)
            else:
                from safetensors.torch import save_file
                save_file(state, path)
            fsync_all()
        else:
            model = {f"t{i:02d}": torch.zeros(elements) for i in range(tensors)}
            for f in files():
                fd = os.open(f, os.O_RDONLY)
                if operation == "load_cold":
                    os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                else:
                    with open(f, "rb") as warm:
                        while warm.read(8 << 20): pass
                os.close(fd)
            start = time.perf_counter()
            if kind == "dcp":
                import torch.distributed.checkpoint as dcp
                dcp.load(model, checkpoint_id=path)
            else:
                if kind == "safetensors":
                    from safetensors.torch import load_file
                    loaded = load_file(path)
                else:
                    loaded = torch.load(path, mmap=(kind == "mmap"), weights_only=True)
                with torch.no_grad():
                    for key, tensor in model.items(): tensor.copy_(loaded[key])
        seconds = time.perf_counter() - start
        # VmHWM, not ru_maxrss: the latter carries the high-water mark of the (large) benchmark process this one was forked from.
        peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
        print(seconds, peak_kib / 1024)
        """;

    private readonly string _folder = Path.Combine(chroot, "tmp", $"ckpt-bench-peers-{Environment.ProcessId}");
    private readonly Dictionary<string, double> _peakRssMiB = new(StringComparer.Ordinal);

    /// <summary>Whether the chroot is there and its python imports every peer (what scripts/peers.sh checks too).</summary>
    public static bool IsPresent(string chroot) => File.Exists(Path.Combine(chroot, ".ckpt-peers-ready")) && File.Exists(Path.Combine(chroot, "usr", "bin", "python3"));

    /// <summary>The peers' peak RSS (MiB, interpreter and model included), by peer and operation, from their last runs.</summary>
    public JsonObject PeakRss()
    {
        lock (_peakRssMiB) return new JsonObject(_peakRssMiB.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, (JsonNode?)Math.Round(p.Value, 1))));
    }

    /// <summary>A peer's timed run: <paramref name="peer"/> torch, mmap, dcp or safetensors; <paramref name="operation"/> save, load_cold or load_warm.</summary>
    public async Task<double> RunAsync(string peer, string operation)
    {
        Directory.CreateDirectory(_folder);
        await EnsureProcAsync();
        if (operation != "save" && !Saved(peer)) await RunAsync(peer, "save"); // a load row run alone saves first (untimed)
        var info = new ProcessStartInfo("chroot") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.Environment["UCX_LOG_LEVEL"] = "fatal"; // PyTorch's UCX would print an error about the boot id (absent in a chroot) to stdout
        foreach (var arg in new[] { chroot, "/usr/bin/python3", "-c", Script, $"{peer}:{operation}", "/" + Path.GetRelativePath(chroot, _folder),
                     tensors.ToString(CultureInfo.InvariantCulture), elements.ToString(CultureInfo.InvariantCulture) })
            info.ArgumentList.Add(arg);
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start chroot (scripts/peers.sh builds the peers' chroot; it needs root)");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) throw new InvalidOperationException($"peer {peer} {operation} failed (exit {process.ExitCode}): {(await error).Trim()}");
        var fields = (await output).Trim().Split('\n')[^1].Trim().Split(' '); // the script's last line
        lock (_peakRssMiB) _peakRssMiB[$"{peer}_{operation}"] = double.Parse(fields[1], CultureInfo.InvariantCulture);
        return double.Parse(fields[0], CultureInfo.InvariantCulture);
    }

    /// <summary>The chroot's /proc, which the script reads its peak RSS from (mounted once, left for later runs).</summary>
    private async Task EnsureProcAsync()
    {
        if (Directory.Exists(Path.Combine(chroot, "proc", "self"))) return;
        using var mount = Process.Start(new ProcessStartInfo("mount", ["-t", "proc", "proc", Path.Combine(chroot, "proc")]) { UseShellExecute = false, RedirectStandardError = true })
            ?? throw new InvalidOperationException("could not start mount");
        var error = await mount.StandardError.ReadToEndAsync();
        await mount.WaitForExitAsync();
        if (mount.ExitCode != 0) throw new InvalidOperationException($"mounting /proc in {chroot} failed: {error.Trim()} (the peers need root)");
    }

    private bool Saved(string peer) => peer switch
    {
        "dcp" => Directory.Exists(Path.Combine(_folder, "dcp")),
        "safetensors" => File.Exists(Path.Combine(_folder, "state.safetensors")),
        _ => File.Exists(Path.Combine(_folder, "state.pth")),
    };

    /// <summary>Removes the peers' files from the chroot.</summary>
    public void Delete()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }
}
