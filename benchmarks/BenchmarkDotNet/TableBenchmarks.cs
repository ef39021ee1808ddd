using System.Diagnostics;
using System.Globalization;
using Azure.Storage.Blobs;
using Checkpointing.Abstractions;
using Checkpointing.Abstractions.Runs;
using Checkpointing.Formats;
using Checkpointing.Grains;
using Checkpointing.Storage;
using Checkpointing.TrainerAgent;
using Checkpointing.TrainerAgent.Cluster;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.TestingHost;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.Benchmarks;

/// <summary>
/// End-to-end measurements, each printed as a ratio against a reference measured in the same run
/// on the same machine: the disk's own speed (dd), torch.save/torch.load (/usr/bin/python3), a raw
/// Azure SDK upload/download to the same Azurite and a synchronous save. The control plane has its
/// own load generator in the product: <c>ckpt bench commits</c>.
/// Every timing is the median of <see cref="Repeats"/> runs.
/// </summary>
public static class TableBenchmarks
{
    private const int Repeats = 3;
    private const int Tensors = 64;

    public static async Task<int> RunAsync(int sizeMiB, TextWriter output)
    {
        var root = Directory.CreateTempSubdirectory("ckpt-bench-").FullName;
        try
        {
            var repo = FindRepo();
            var elements = (long)sizeMiB * (1 << 20) / 4 / Tensors;
            var bytes = elements * 4 * Tensors;
            var model = new StateDict(Tensors, elements);
            var rows = new List<(string What, double Seconds, string Reference, double ReferenceSeconds)>();
            Console.Error.WriteLine($"[bench] state dict: {Tensors} float32 tensors, {bytes / (1 << 20)} MiB; median of {Repeats}");

            var dd = Median(() => Shell("dd", $"if=/dev/zero of={root}/dd.bin bs=8M count={bytes / (8 << 20)} conv=fdatasync status=none"));
            var checkpointer = new Checkpointer(model, Path.Combine(root, "local"));
            var save = Median(() => checkpointer.Save("bench"));
            rows.Add(("local Checkpointer.Save (fsync'd)", save, "dd bs=8M conv=fdatasync", dd));

            var torchSave = Median(() => Shell("/usr/bin/python3", $"-c \"import torch; sd={{f't{{i}}': torch.randn({elements}) for i in range({Tensors})}}; import time; t=time.time(); torch.save(sd, '{root}/t.pth'); import os; f=open('{root}/t.pth','rb+'); os.fsync(f.fileno()); print(time.time()-t)\""), useOutput: true);
            rows.Add(("local Checkpointer.Save (fsync'd)", save, "torch.save + fsync (python3)", torchSave));
            var load = Median(() => checkpointer.Load(Path.Combine(root, "local", "bench")));
            var torchLoad = Median(() => Shell("/usr/bin/python3", $"-c \"import torch, time; t=time.time(); torch.load('{root}/t.pth'); print(time.time()-t)\""), useOutput: true);
            rows.Add(("local Checkpointer.Load (verified)", load, "torch.load (python3)", torchLoad));

            await using (var azurite = await Azurite.StartAsync(repo))
            {
                var container = new BlobServiceClient(azurite.ConnectionString, AzureBlobStore.CreateClientOptions()).GetBlobContainerClient("bench");
                await container.CreateIfNotExistsAsync();
                var store = new AzureBlobStore(container);
                var raw = new byte[bytes / Tensors];
                Random.Shared.NextBytes(raw);
                var rawUpload = await MedianAsync(async () =>
                {
                    for (var i = 0; i < Tensors; i++) await container.GetBlobClient($"raw/{i}").UploadAsync(new BinaryData(raw), overwrite: true);
                });
                var blobSave = await MedianAsync(() => NativeCheckpointWriter.WriteAsync(store, "ck", new CheckpointIdentity("bench", "ck", 0), ModuleCheckpointable.StateOf(model), TorchTensors.AsSource));
                rows.Add(("blob store save (native, parallel blocks)", blobSave, "raw SDK UploadAsync, same bytes", rawUpload));
                var rawDownload = await MedianAsync(async () =>
                {
                    for (var i = 0; i < Tensors; i++) await container.GetBlobClient($"raw/{i}").DownloadContentAsync();
                });
                var blobLoad = await MedianAsync(async () => await NativeCheckpointReader.LoadAsync(store, "ck", await NativeCheckpointReader.ReadManifestAsync(store, "ck"), TorchTensors.Allocate));
                rows.Add(("blob store load (verified)", blobLoad, "raw SDK DownloadContentAsync", rawDownload));
            }

            var asyncCheckpointer = new Checkpointer(model, Path.Combine(root, "async")) { AsyncSave = true };
            // The stall is how long SaveAsync blocks the training loop (the host snapshot); the write finishes outside the timing.
            var stall = MedianOf(() =>
            {
                var clock = Stopwatch.StartNew();
                asyncCheckpointer.SaveAsync("stall").GetAwaiter().GetResult();
                var blocked = clock.Elapsed.TotalSeconds;
                asyncCheckpointer.WaitForPendingSaveAsync().GetAwaiter().GetResult();
                return blocked;
            });
            rows.Add(("async save: training stall", stall, "synchronous save", save));

            output.WriteLine($"| measurement ({bytes / (1 << 20)} MiB state dict unless noted) | seconds | reference | seconds | ratio |");
            output.WriteLine("|---|---|---|---|---|");
            foreach (var (what, seconds, reference, referenceSeconds) in rows)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {what} | {seconds:F3} | {reference} | {referenceSeconds:F3} | {seconds / referenceSeconds:F2} |"));
            }
            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Median seconds of <see cref="Repeats"/> timed runs (the median discards a first run's JIT and cache warm-up).</summary>
    private static double Median(Action run) => MedianOf(() =>
    {
        var clock = Stopwatch.StartNew();
        run();
        return clock.Elapsed.TotalSeconds;
    });

    private static double MedianOf(Func<double> sample)
    {
        var times = Enumerable.Range(0, Repeats).Select(_ => sample()).Order().ToList();
        return times[Repeats / 2];
    }

    /// <summary>Times a command, or (with <paramref name="useOutput"/>) uses the seconds it prints, to leave out interpreter start-up.</summary>
    private static double Median(Func<string> command, bool useOutput = false) => MedianOf(() =>
    {
        var clock = Stopwatch.StartNew();
        var printed = command();
        return useOutput ? double.Parse(printed.Trim(), CultureInfo.InvariantCulture) : clock.Elapsed.TotalSeconds;
    });

    private static async Task<double> MedianAsync(Func<Task> run)
    {
        var times = new List<double>();
        for (var i = 0; i < Repeats; i++)
        {
            var clock = Stopwatch.StartNew();
            await run();
            times.Add(clock.Elapsed.TotalSeconds);
        }
        times.Sort();
        return times[Repeats / 2];
    }

    private static string Shell(string file, string arguments)
    {
        var info = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add($"{file} {arguments}");
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} failed ({process.ExitCode}): {error}");
        return output;
    }

    private static string FindRepo()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Checkpointing.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("run from a build inside the repository");
    }

    /// <summary>A module whose state dict is <c>count</c> float32 buffers of <c>elements</c> each.</summary>
    private sealed class StateDict : nn.Module
    {
        public StateDict(int count, long elements) : base(nameof(StateDict))
        {
            for (var i = 0; i < count; i++) register_buffer($"t{i:D2}", torch.randn(elements));
        }
    }
}
