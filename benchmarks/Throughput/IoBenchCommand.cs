using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Checkpointing.Cli;
using Checkpointing.Formats;
using Checkpointing.Lab;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// <c>ckpt-bench io</c>: the data plane against the machine's own limits (docs/benchmarks.md#measure-dont-guess). Every row
/// times one of our operations and a reference doing the same work with the same bytes — a plain
/// FileStream write + fsync, dd, torch.save/torch.load, a memcpy, the raw Azure SDK on the same
/// Azurite — interleaved within each repetition, and prints min, median and the ratio of medians,
/// plus the peak resident memory of our save and load.
/// </summary>
public static class IoBenchCommand
{
    public static readonly string[] RowNames =
    [
        "local_save_vs_filestream", "local_save_vs_dd", "local_save_vs_torch_save",
        "load_cold_vs_torch_load", "load_warm_vs_torch_load", "async_stall_vs_memcpy",
        "blob_save_vs_sdk", "blob_load_vs_sdk", "incremental_changed_vs_full_save", "incremental_frozen90_vs_full_save",
        "resharded_columns_load_vs_consolidated_load", "resharded_rows_load_vs_consolidated_load",
    ];

    public static Command Build(CliContext context)
    {
        var sizeMiB = CliOptions.Integer("--size-mib", "size of the state dict", 1024, min: 1);
        var repeat = CliOptions.Integer("--repeat", "interleaved repetitions", 3, min: 1);
        var tensors = CliOptions.Integer("--tensors", "float32 tensors in the state dict", 64, min: 1);
        var shards = CliOptions.Integer("--shards", "shards per checkpoint", 1, min: 1);
        var rows = CliOptions.Subset("--rows", "rows to run, comma-separated (default: all)", "ROW,...", RowNames,
            unknown => unknown is null ? $"--rows needs at least one row (known: {string.Join(", ", RowNames)})" : $"unknown row '{unknown}' (known: {string.Join(", ", RowNames)})");
        var device = CliOptions.Choice("--device", "where the state dict lives", "cpu", "cpu", "cuda");
        var json = CliOptions.Json();
        var repo = CliOptions.Text("--repo", "the repository, for Azurite (found from the working folder when not given)", "DIR");
        var command = new Command("io", "the data plane against this machine's limits: each row times our save/load/async save and a reference on the same bytes " +
            "(FileStream+fsync, dd, torch.save/torch.load via /usr/bin/python3, memcpy, raw Azure SDK on a local Azurite), interleaved within every repetition; " +
            "prints median and min, ratios, and the peak RSS of our save and load")
            .With(sizeMiB, repeat, tensors, shards, rows, device, json, repo);
        command.SetAction(parse => RunAsync(new IoBenchOptions(parse.GetValue(sizeMiB), (int)parse.GetValue(repeat), (int)parse.GetValue(tensors), (int)parse.GetValue(shards),
            parse.GetValue(rows)!, parse.GetValue(device) == "cuda", parse.GetValue(json), parse.GetValue(repo)), context));
        return command;
    }

    private sealed record IoBenchOptions(long SizeMiB, int Repeat, int Tensors, int Shards, string[] Rows, bool Cuda, bool Json, string? Repo);

    private static async Task<int> RunAsync(IoBenchOptions o, CliContext context)
    {
        var (sizeMiB, repeat, tensors, shards, rows, useCuda, json, repo) = o;
        if (useCuda && !cuda.is_available())
            throw new InvalidOperationException("--device cuda: no CUDA device is available to TorchSharp (build with -p:TorchRuntime=cuda on a GPU machine: scripts/gpu-check.sh)");
        var device = useCuda ? DeviceType.CUDA : DeviceType.CPU;
        if (rows.Any(r => r.Contains("torch", StringComparison.Ordinal))) TorchReference.ThrowIfMissing();
        var say = (string line) => context.Error.WriteLine($"[bench] {line}");

        var elements = Math.Max(1, sizeMiB * (1 << 20) / 4 / tensors);
        using (zeros(1)) { } // libtorch's native libraries are mapped now, so they are part of the baseline, not of our save
        var baseline = ResidentMemory.CurrentBytes();
        using var workload = new IoWorkload(tensors, elements, shards, device, say);
        say($"state dict: {tensors} float32 tensors on {device}, {workload.StateBytes / (1 << 20)} MiB, {shards} shard(s); {repeat} repetitions, interleaved");
        var memory = workload.MeasurePeakMemory(baseline);

        var groups = new List<PairGroup>();
        var torchRef = new TorchReference(workload.Folder, tensors, elements);
        AddGroup(groups, rows, "local save", workload.LocalSaveAsync,
            ("local_save_vs_filestream", "FileStream write + fsync", workload.FileStreamWriteAsync),
            ("local_save_vs_dd", "dd bs=8M conv=fdatasync", workload.DdAsync),
            ("local_save_vs_torch_save", "torch.save + fsync", torchRef.SaveAsync));
        AddGroup(groups, rows, "load cold", workload.LoadColdAsync, ("load_cold_vs_torch_load", "torch.load, evicted", torchRef.LoadColdAsync));
        AddGroup(groups, rows, "load warm", workload.LoadWarmAsync, ("load_warm_vs_torch_load", "torch.load, cached", torchRef.LoadWarmAsync));
        AddGroup(groups, rows, "async save stall", workload.AsyncStallAsync, ("async_stall_vs_memcpy", device == DeviceType.CPU ? "memcpy into a pre-touched buffer" : "device-to-host copy into pinned tensors", workload.MemcpyAsync));
        await using var blob = rows.Any(r => r.StartsWith("blob", StringComparison.Ordinal)) ? await BlobWorkload.StartAsync(repo ?? RepositoryBuilds.FindRoot(), workload, writeFirst: !rows.Contains("blob_save_vs_sdk"), say) : null;
        if (blob is not null)
        {
            AddGroup(groups, rows, "blob save", blob.SaveAsync, ("blob_save_vs_sdk", "Azure SDK upload, same bytes and concurrency", blob.SdkUploadAsync));
            AddGroup(groups, rows, "blob load", blob.LoadAsync, ("blob_load_vs_sdk", "Azure SDK download, same bytes and concurrency", blob.SdkDownloadAsync));
        }
        using var incremental = rows.Any(r => r.StartsWith("incremental", StringComparison.Ordinal))
            ? new IncrementalWorkload(workload.Model, tensors, elements, shards, Path.Combine(workload.Folder, "incremental")) : null;
        if (incremental is not null)
        {
            AddGroup(groups, rows, "incremental save, every tensor changed", incremental.ChangedIncrementalAsync,
                ("incremental_changed_vs_full_save", "full save of the same state", incremental.ChangedFullAsync));
            AddGroup(groups, rows, "incremental save, 90% of tensors frozen", incremental.FrozenIncrementalAsync,
                ("incremental_frozen90_vs_full_save", "full save of the same state", incremental.FrozenFullAsync));
        }
        var reshard = rows.Any(r => r.StartsWith("resharded", StringComparison.Ordinal)) ? await ReshardWorkload.CreateAsync(tensors, elements, Path.Combine(workload.Folder, "reshard")) : null;
        if (reshard is not null)
        {
            AddGroup(groups, rows, "4 ranks' row slices loaded by 3 ranks split by columns", reshard.ColumnsLoadAsync,
                ("resharded_columns_load_vs_consolidated_load", "one whole load of the consolidated checkpoint", reshard.ConsolidatedLoadAsync));
            AddGroup(groups, rows, "4 ranks' row slices loaded by 3 ranks split by rows", reshard.RowsLoadAsync,
                ("resharded_rows_load_vs_consolidated_load", "one whole load of the consolidated checkpoint", reshard.ConsolidatedLoadAsync));
        }
        if (rows.Contains("async_stall_vs_memcpy")) await workload.WarmArenaAsync();

        var timings = await InterleavedPairs.RunAsync(groups, repeat, say);
        var summary = Summary(sizeMiB, repeat, tensors, shards, workload, memory, timings);
        summary["device"] = device.ToString().ToLowerInvariant();
        if (incremental?.FrozenWrittenRatio is { } written) summary["incremental_frozen90_written_ratio"] = Round(written);
        if (reshard?.ReadRatio is { } read) summary["resharded_read_ratio"] = Round(read);
        if (reshard is not null)
        {
            var (peak, slices) = await reshard.PeakMemoryOfOneColumnsLoadAsync();
            summary["peak_rss_resharded_load_mib"] = Round(peak / 1048576.0);
            summary["resharded_slices_mib"] = Round(slices / 1048576.0);
        }
        context.Out.WriteLine(json ? summary.ToJsonString() : Table(summary));
        return 0;
    }

    private static void AddGroup(List<PairGroup> groups, IReadOnlyCollection<string> selected, string what, Func<Task<double>> ours,
        params (string Row, string Reference, Func<Task<double>> Run)[] rows)
    {
        var chosen = rows.Where(r => selected.Contains(r.Row)).ToList();
        if (chosen.Count > 0) groups.Add(new PairGroup(what, ours, chosen));
    }

    private static JsonObject Summary(long sizeMiB, int repeat, int tensors, int shards, IoWorkload workload, PeakMemory memory, IReadOnlyList<PairedTimings> timings) => new()
    {
        ["size_mib"] = sizeMiB,
        ["repeat"] = repeat,
        ["tensors"] = tensors,
        ["shards"] = shards,
        ["state_mib"] = Round(workload.StateBytes / 1048576.0),
        ["rows"] = new JsonArray(timings.Select(t => (JsonNode)new JsonObject
        {
            ["name"] = t.Row,
            ["ours_median_s"] = Seconds(t.OursMedian),
            ["ours_min_s"] = Seconds(t.Ours.Min()),
            ["reference"] = t.Reference,
            ["reference_median_s"] = Seconds(t.ReferenceMedian),
            ["reference_min_s"] = Seconds(t.ReferenceSeconds.Min()),
            ["ratio"] = Round(t.Ratio),
            ["pair_ratio_median"] = Round(t.PairRatioMedian),
        }).ToArray()),
        ["peak_rss_save_mib"] = Round(memory.SaveBytes / 1048576.0),
        ["peak_rss_load_mib"] = Round(memory.LoadBytes / 1048576.0),
        ["arena_mib"] = Round(workload.ArenaBytes / 1048576.0),
    };

    private static double Round(double value) => Math.Round(value, 3);

    /// <summary>To the microsecond: on a fast machine a small row's reference (a memcpy of a few MiB) takes well under a millisecond.</summary>
    private static double Seconds(double value) => Math.Round(value, 6);

    private static string SecondsText(JsonNode? seconds) =>
        ((double)seconds!).ToString((double)seconds >= 0.001 ? "0.###" : "0.######", CultureInfo.InvariantCulture);

    private static string Table(JsonObject s)
    {
        var lines = new List<string>
        {
            $"state dict {s["state_mib"]} MiB ({s["tensors"]} float32 tensors, {s["shards"]} shard(s)); median and min of {s["repeat"]} interleaved repetitions",
            "| row | ours median s (min) | reference | reference median s (min) | ratio of medians | median of pair ratios |",
            "|---|---|---|---|---|---|",
        };
        foreach (var row in s["rows"]!.AsArray())
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {row!["name"]} | {SecondsText(row["ours_median_s"])} ({SecondsText(row["ours_min_s"])}) | {row["reference"]} | {SecondsText(row["reference_median_s"])} ({SecondsText(row["reference_min_s"])}) | {row["ratio"]} | {row["pair_ratio_median"]} |"));
        }
        lines.Add($"peak RSS over the process before the model existed: save {s["peak_rss_save_mib"]} MiB, load {s["peak_rss_load_mib"]} MiB (state {s["state_mib"]} MiB); async-save arena {s["arena_mib"]} MiB");
        if (s["peak_rss_resharded_load_mib"] is { } resharded)
            lines.Add($"peak RSS one resharded (column-split) load added: {resharded} MiB for {s["resharded_slices_mib"]} MiB of slices; read buffers are bounded by {ReadBufferBudget.Shared.Capacity >> 20} MiB per process");
        if (s["incremental_frozen90_written_ratio"] is { } written) lines.Add($"incremental save with 90% of tensors frozen wrote {written} of the state's bytes (last repetition)");
        return string.Join('\n', lines);
    }
}
