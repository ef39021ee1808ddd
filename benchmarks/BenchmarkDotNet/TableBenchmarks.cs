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
/// Azure SDK upload/download to the same Azurite, a synchronous save, and grain commit latency.
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

            var (p50, p99, perSecond) = await GrainCommitsAsync(root);
            output.WriteLine($"| measurement ({bytes / (1 << 20)} MiB state dict unless noted) | seconds | reference | seconds | ratio |");
            output.WriteLine("|---|---|---|---|---|");
            foreach (var (what, seconds, reference, referenceSeconds) in rows)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {what} | {seconds:F3} | {reference} | {referenceSeconds:F3} | {seconds / referenceSeconds:F2} |"));
            }
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| grain commit latency, 64 runs x 2 ranks at once (p50 / p99) | {p50 * 1000:F1} ms / {p99 * 1000:F1} ms | commits per second | {perSecond:F0} | - |"));
            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Begin → shard → report → commit for many runs at once on a 2-silo in-process cluster; latency per checkpoint.</summary>
    private static async Task<(double P50, double P99, double PerSecond)> GrainCommitsAsync(string root)
    {
        var key = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        var builder = new InProcessTestClusterBuilder(2);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddMemoryGrainStorage(GrainStorage.Runs);
            silo.AddMemoryGrainStorage(GrainStorage.Tenants);
            silo.AddCheckpointing(new FileSystemStore(Path.Combine(root, "grain")), o => o.SigningKey = Convert.ToBase64String(key));
        });
        await using var cluster = builder.Build();
        await cluster.DeployAsync();
        Orleans.Runtime.RequestContext.Set(TenantTokens.RequestContextKey, TenantTokens.Issue(key, "bench", DateTimeOffset.UtcNow.AddHours(1)));
        var store = new FileSystemStore(Path.Combine(root, "grain"));
        var latencies = new List<double>();
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 64).Select(async r =>
        {
            var grain = cluster.Client.GetGrain<ITrainingRunGrain>($"bench/r{r}");
            await grain.Create(new PeriodicPolicy(1, MaxToKeep: 2));
            var epoch = await grain.StartAttempt();
            var tensor = new NamedTensor("model/w", HostTensor.Allocate(TensorDType.F32, [256]));
            for (var i = 0; i < 10; i++)
            {
                var start = Stopwatch.GetTimestamp();
                await Task.WhenAll(Enumerable.Range(0, 2).Select(async rank =>
                {
                    var plan = await grain.BeginCheckpoint(new BeginCheckpointRequest($"model_{i:D7}", i, 2, rank, epoch, [new TensorSize("model/w", 1024)]));
                    var report = await RankShardWriter.WriteAsync(store, plan, epoch, [tensor], rank == 0 ? """{"model":{"w":{"$tensor":"model/w"}}}""" : null);
                    await grain.ReportShard(report);
                }));
                lock (latencies) latencies.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
            }
        }));
        var seconds = clock.Elapsed.TotalSeconds;
        latencies.Sort();
        return (latencies[latencies.Count / 2], latencies[(int)(latencies.Count * 0.99)], latencies.Count / seconds);
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
