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
    /// <summary>The compression rows' data: trained weights and random bytes in each float dtype (<see cref="CompressionWorkload"/>).</summary>
    private static readonly string[] CompressionSets = ["bf16_trained", "f16_trained", "f32_trained", "bf16_random", "f16_random", "f32_random"];

    /// <summary>The rows against the machine's own limits and Debian 12's torch 1.13.</summary>
    public static readonly string[] CoreRowNames =
    [
        "local_save_vs_filestream", "local_save_vs_dd", "local_save_vs_torch_save",
        "load_cold_vs_torch_load", "load_warm_vs_torch_load", "load_cold_vs_read_fresh", "load_warm_vs_read_fresh", "async_stall_vs_memcpy",
        "blob_save_vs_sdk", "blob_load_vs_sdk", "blob_load_vs_sdk_fresh", "incremental_changed_vs_full_save", "incremental_frozen90_vs_full_save",
        "resharded_columns_load_vs_consolidated_load", "resharded_rows_load_vs_consolidated_load",
        "memory_stall_vs_memcpy", "replica_transfer_vs_loopback",
        .. CompressionSets.SelectMany(set => new[] { $"compress_{set}_vs_zstd", $"decompress_{set}_vs_zstd" }), "compress_bf16_save_500mbps_vs_plain_save",
        "embedding_blocks_save_vs_full_save", "embedding_blocks_save_vs_incremental_save", "embedding_blocks_load_vs_full_load",
    ];


    /// <summary>The rows against the peers of scripts/peers.sh's chroot (<see cref="PeerReference"/>): the peer, its operation.</summary>
    public static readonly (string Row, string Peer, string Operation, string Reference)[] PeerRows =
    [
        ("local_save_vs_torch2_save", "torch", "save", "torch.save (PyTorch 2) + fsync"),
        ("local_save_vs_dcp_save", "dcp", "save", "torch.distributed.checkpoint.save"),
        ("local_save_vs_safetensors_save", "safetensors", "save", "safetensors save_file + fsync"),
        ("load_cold_vs_torch2_load", "torch", "load_cold", "torch.load (PyTorch 2) + copy_, evicted"),
        ("load_cold_vs_torch2_mmap_load", "mmap", "load_cold", "torch.load(mmap=True) + copy_, evicted"),
        ("load_cold_vs_dcp_load", "dcp", "load_cold", "torch.distributed.checkpoint.load (in place), evicted"),
        ("load_cold_vs_safetensors_load", "safetensors", "load_cold", "safetensors load_file + copy_, evicted"),
        ("load_warm_vs_torch2_load", "torch", "load_warm", "torch.load (PyTorch 2) + copy_, cached"),
        ("load_warm_vs_torch2_mmap_load", "mmap", "load_warm", "torch.load(mmap=True) + copy_, cached"),
        ("load_warm_vs_dcp_load", "dcp", "load_warm", "torch.distributed.checkpoint.load (in place), cached"),
        ("load_warm_vs_safetensors_load", "safetensors", "load_warm", "safetensors load_file + copy_, cached"),
    ];

    public static readonly string[] RowNames = [.. CoreRowNames, .. PeerRows.Select(p => p.Row)];

    public static Command Build(CliContext context)
    {
        var sizeMiB = CliOptions.Integer("--size-mib", "size of the state dict", 1024, min: 1);
        var repeat = CliOptions.Integer("--repeat", "interleaved repetitions", 3, min: 1);
        var tensors = CliOptions.Integer("--tensors", "float32 tensors in the state dict", 64, min: 1);
        var shards = CliOptions.Integer("--shards", "shards per checkpoint", 1, min: 1);
        var rows = CliOptions.Subset("--rows", "rows to run, comma-separated (default: all)", "ROW,...", RowNames,
            unknown => unknown is null ? $"--rows needs at least one row (known: {string.Join(", ", RowNames)})" : $"unknown row '{unknown}' (known: {string.Join(", ", RowNames)})");
        var device = CliOptions.Choice("--device", "where the state dict lives", "cpu", "cpu", "cuda");
        var peers = CliOptions.Choice("--peers", "rows against PyTorch 2, DCP and safetensors from scripts/peers.sh's chroot: auto (when it is there), on, off", "auto", "auto", "on", "off");
        var peersRoot = CliOptions.Text("--peers-root", $"the peers' chroot (default {PeerReference.DefaultRoot})", "DIR");
        var json = CliOptions.Json();
        var repo = CliOptions.Text("--repo", "the repository, for Azurite (found from the working folder when not given)", "DIR");
        var command = new Command("io", "the data plane against this machine's limits: each row times our save/load/async save and a reference on the same bytes " +
            "(FileStream+fsync, dd, torch.save/torch.load via /usr/bin/python3, memcpy, raw Azure SDK on a local Azurite), interleaved within every repetition; " +
            "prints median and min, ratios, and the peak RSS of our save and load")
            .With(sizeMiB, repeat, tensors, shards, rows, device, peers, peersRoot, json, repo);
        command.SetAction(parse => RunAsync(new IoBenchOptions(parse.GetValue(sizeMiB), (int)parse.GetValue(repeat), (int)parse.GetValue(tensors), (int)parse.GetValue(shards),
            parse.GetValue(rows)!, parse.GetValue(device) == "cuda", parse.GetValue(peers)!, parse.GetValue(peersRoot) ?? PeerReference.DefaultRoot, parse.GetValue(json), parse.GetValue(repo)), context));
        return command;
    }

    private sealed record IoBenchOptions(long SizeMiB, int Repeat, int Tensors, int Shards, string[] Rows, bool Cuda, string Peers, string PeersRoot, bool Json, string? Repo);

    private static async Task<int> RunAsync(IoBenchOptions o, CliContext context)
    {
        var (sizeMiB, repeat, tensors, shards, rows, useCuda, peers, peersRoot, json, repo) = o;
        var peersPresent = PeerReference.IsPresent(peersRoot);
        var peersNote = PeersNote(peers, peersPresent, peersRoot);
        rows = SelectPeerRows(rows, peers, peersPresent, peersRoot);
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
        var peerRef = new PeerReference(peersRoot, tensors, elements);
        (string, string, Func<Task<double>>)[] Peers(string operation) =>
            PeerRows.Where(p => p.Operation == operation).Select(p => (p.Row, p.Reference, (Func<Task<double>>)(() => peerRef.RunAsync(p.Peer, p.Operation)))).ToArray();
        AddGroup(groups, rows, "local save", workload.LocalSaveAsync, [
            ("local_save_vs_filestream", "FileStream write + fsync", workload.FileStreamWriteAsync),
            ("local_save_vs_dd", "dd bs=8M conv=fdatasync", workload.DdAsync),
            ("local_save_vs_torch_save", "torch.save + fsync", torchRef.SaveAsync), .. Peers("save")]);
        AddGroup(groups, rows, "load cold", workload.LoadColdAsync, [("load_cold_vs_torch_load", "torch.load, evicted", torchRef.LoadColdAsync),
            ("load_cold_vs_read_fresh", "the files read into fresh memory, same pieces and parallelism, evicted", () => workload.ReadIntoFreshAsync(cold: true)), .. Peers("load_cold")]);
        AddGroup(groups, rows, "load warm", workload.LoadWarmAsync, [("load_warm_vs_torch_load", "torch.load, cached", torchRef.LoadWarmAsync),
            ("load_warm_vs_read_fresh", "the files read into fresh memory, same pieces and parallelism, cached", () => workload.ReadIntoFreshAsync(cold: false)), .. Peers("load_warm")]);
        AddGroup(groups, rows, "async save stall", workload.AsyncStallAsync, ("async_stall_vs_memcpy", device == DeviceType.CPU ? "memcpy into a pre-touched buffer" : "device-to-host copy into pinned tensors", workload.MemcpyAsync));
        await using var blob = rows.Any(r => r.StartsWith("blob", StringComparison.Ordinal)) ? await BlobWorkload.StartAsync(repo ?? RepositoryBuilds.FindRoot(), workload, writeFirst: !rows.Contains("blob_save_vs_sdk"), say) : null;
        if (blob is not null)
        {
            AddGroup(groups, rows, "blob save", blob.SaveAsync, ("blob_save_vs_sdk", "Azure SDK upload, same bytes and concurrency", blob.SdkUploadAsync));
            AddGroup(groups, rows, "blob load", blob.LoadAsync,
                ("blob_load_vs_sdk", "Azure SDK download, same bytes and concurrency, into pre-touched memory", blob.SdkDownloadAsync),
                ("blob_load_vs_sdk_fresh", "Azure SDK download, same bytes and concurrency, into fresh memory", blob.SdkDownloadFreshAsync));
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
        await using var memoryTier = rows.Any(r => r is "memory_stall_vs_memcpy" or "replica_transfer_vs_loopback")
            ? await MemoryTierWorkload.StartAsync(RepositoryBuilds.Sibling(repo ?? RepositoryBuilds.FindRoot(), "Silo", "Checkpointing.Silo.dll"), workload, say) : null;
        if (memoryTier is not null)
        {
            AddGroup(groups, rows, "memory checkpoint stall", memoryTier.StallAsync, ("memory_stall_vs_memcpy", "memcpy into a pre-touched buffer", workload.MemcpyAsync));
            AddGroup(groups, rows, "replica transfer to a holder over loopback HTTP", memoryTier.TransferAsync,
                ("replica_transfer_vs_loopback", "the same bytes over a plain loopback TCP socket into pre-touched memory", memoryTier.LoopbackCopyAsync));
            if (rows.Contains("memory_stall_vs_memcpy")) await memoryTier.WarmAsync();
        }
        var compression = rows.Any(r => r.Contains("compress", StringComparison.Ordinal)) ? CompressionWorkload.Create(workload.StateBytes, steps: 50, say) : null;
        if (compression is not null)
        {
            foreach (var set in CompressionSets)
            {
                AddGroup(groups, rows, $"bytegroup encode of {set.Replace('_', ' ')} weights, one core", () => compression.EncodeAsync(set),
                    ($"compress_{set}_vs_zstd", "zstd alone on the raw bytes, same level and frames, one core", () => compression.ZstdEncodeAsync(set)));
                AddGroup(groups, rows, $"bytegroup decode of {set.Replace('_', ' ')} weights, one core", () => compression.DecodeAsync(set),
                    ($"decompress_{set}_vs_zstd", "zstd alone, decompressing the same frames, one core", () => compression.ZstdDecodeAsync(set)));
            }
            AddGroup(groups, rows, "save of trained bf16 weights, compressed, through a 500 MB/s link", () => compression.SaveThroughLinkAsync(compressed: true),
                ("compress_bf16_save_500mbps_vs_plain_save", "the same save uncompressed through the same link", () => compression.SaveThroughLinkAsync(compressed: false)));
        }
        // The table is as large as the state dict: --size-mib 512 makes it 1M rows of 128 float32.
        using var embedding = rows.Any(r => r.StartsWith("embedding", StringComparison.Ordinal))
            ? new EmbeddingWorkload(Math.Max(100, workload.StateBytes / (EmbeddingWorkload.Columns * 4)), Path.Combine(workload.Folder, "embedding")) : null;
        if (embedding is not null)
        {
            AddGroup(groups, rows, $"save of an embedding table ({embedding.Rows} x {EmbeddingWorkload.Columns} float32) with 1% of its rows changed, block reuse", embedding.BlocksSaveAsync,
                ("embedding_blocks_save_vs_full_save", "a full save of the same table", embedding.FullSaveAsync),
                ("embedding_blocks_save_vs_incremental_save", "a whole-tensor incremental save of the same table", embedding.WholeIncrementalSaveAsync));
            AddGroup(groups, rows, "whole load of the block-mapped table", embedding.BlocksLoadAsync,
                ("embedding_blocks_load_vs_full_load", "a whole load of the same table saved in full", embedding.FullLoadAsync));
        }
        if (rows.Contains("async_stall_vs_memcpy")) await workload.WarmArenaAsync();

        if (peersNote is not null) say(peersNote);
        var timings = await InterleavedPairs.RunAsync(groups, repeat, say);
        peerRef.Delete();
        var summary = Summary(sizeMiB, repeat, tensors, shards, workload, memory, timings);
        summary["peers"] = peersNote ?? $"PyTorch 2, DCP and safetensors from {peersRoot}";
        if (timings.Any(t => PeerRows.Any(p => p.Row == t.Row)))
        {
            summary["best_peer"] = BestPeers(timings);
            summary["peer_peak_rss_mib"] = peerRef.PeakRss();
        }
        summary["device"] = device.ToString().ToLowerInvariant();
        if (incremental?.FrozenWrittenRatio is { } written) summary["incremental_frozen90_written_ratio"] = Round(written);
        if (reshard?.ReadRatio is { } read) summary["resharded_read_ratio"] = Round(read);
        if (compression is not null) AddCompressionFigures(summary, compression);
        if (embedding is not null) AddEmbeddingFigures(summary, embedding);
        if (reshard is not null)
        {
            var (peak, slices) = await reshard.PeakMemoryOfOneColumnsLoadAsync();
            summary["peak_rss_resharded_load_mib"] = Round(peak / 1048576.0);
            summary["resharded_slices_mib"] = Round(slices / 1048576.0);
        }
        context.Out.WriteLine(json ? summary.ToJsonString() : Table(summary));
        return 0;
    }

    /// <summary>
    /// Beside each compression row: raw over stored bytes for ours (raw when encoding does not pay) and for zstd alone, and both
    /// sides' speeds in MB of raw bytes per second on one core (from the medians).
    /// </summary>
    private static void AddCompressionFigures(JsonObject summary, CompressionWorkload compression)
    {
        var ratios = compression.Ratios();
        foreach (var row in summary["rows"]!.AsArray().OfType<JsonObject>())
        {
            var name = (string)row["name"]!;
            if (CompressionSets.FirstOrDefault(set => name.EndsWith($"_{set}_vs_zstd", StringComparison.Ordinal)) is not { } set || !ratios.TryGetValue(set, out var figures)) continue;
            row["compression_ratio"] = Round(figures.Ours);
            row["zstd_compression_ratio"] = Round(figures.Zstd);
            row["mb_per_s_per_core"] = Round(figures.RawBytes / 1e6 / (double)row["ours_median_s"]!);
            row["zstd_mb_per_s_per_core"] = Round(figures.RawBytes / 1e6 / (double)row["reference_median_s"]!);
        }
    }

    /// <summary>Beside each embedding save row: the median bytes a block save wrote over the median its reference wrote (shards and manifest).</summary>
    private static void AddEmbeddingFigures(JsonObject summary, EmbeddingWorkload embedding)
    {
        foreach (var row in summary["rows"]!.AsArray().OfType<JsonObject>())
        {
            var ratio = (string)row["name"]! switch
            {
                "embedding_blocks_save_vs_full_save" => embedding.WrittenRatioVsFull,
                "embedding_blocks_save_vs_incremental_save" => embedding.WrittenRatioVsWholeIncremental,
                _ => null,
            };
            if (ratio is { } written) row["bytes_written_ratio"] = Math.Round(written, 4);
            if ((string)row["name"]! == "embedding_blocks_save_vs_full_save" && embedding.MaxWrittenRatioVsFull is { } most) row["bytes_written_ratio_max"] = Math.Round(most, 4);
        }
        summary["embedding_table_mib"] = Round(embedding.TableBytes / 1048576.0);
    }

    /// <summary>Null when the peers' rows run; else why they do not.</summary>
    private static string? PeersNote(string peers, bool present, string root) => (peers, present) switch
    {
        ("off", _) => "peers: off (--peers off)",
        (_, false) => $"peers: absent: no chroot at {root} (scripts/peers.sh builds it, about 6 minutes, as root); their rows are left out",
        _ => null,
    };

    /// <summary>The rows to run: the peers' only when they run; asked for by name while absent, they are an error naming the install step.</summary>
    private static string[] SelectPeerRows(string[] rows, string peers, bool present, string root)
    {
        var peerRows = PeerRows.Select(p => p.Row).ToHashSet(StringComparer.Ordinal);
        var asked = rows.Where(peerRows.Contains).ToList();
        var everything = rows.Length == RowNames.Length;
        if (peers == "on" && !present) throw new InvalidOperationException($"--peers on: no peers' chroot at {root}: run scripts/peers.sh (as root) first");
        if (asked.Count > 0 && !everything && (peers == "off" || !present))
            throw new InvalidOperationException($"rows {string.Join(", ", asked)} need the peers' chroot at {root}{(peers == "off" ? ", but --peers is off" : ": run scripts/peers.sh (as root) first")}");
        return peers == "off" || !present ? rows.Where(r => !peerRows.Contains(r)).ToArray() : rows;
    }

    /// <summary>For save, cold load and warm load: the fastest peer by median and our median's ratio to it.</summary>
    private static JsonObject BestPeers(IReadOnlyList<PairedTimings> timings)
    {
        var result = new JsonObject();
        foreach (var operation in new[] { "save", "load_cold", "load_warm" })
        {
            var peers = timings.Where(t => PeerRows.Any(p => p.Row == t.Row && p.Operation == operation)).ToList();
            if (peers.Count == 0) continue;
            var best = peers.MinBy(t => t.ReferenceMedian)!;
            result[operation] = new JsonObject
            {
                ["peer"] = best.Reference,
                ["peer_median_s"] = Seconds(best.ReferenceMedian),
                ["ours_median_s"] = Seconds(best.OursMedian),
                ["ratio"] = Round(best.OursMedian / best.ReferenceMedian),
            };
        }
        return result;
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
        if (s["best_peer"] is JsonObject best)
        {
            foreach (var (operation, row) in best)
                lines.Add($"best peer at {operation}: {row!["peer"]} {SecondsText(row["peer_median_s"])} s; ours {SecondsText(row["ours_median_s"])} s: {row["ratio"]}x");
            lines.Add($"peers' peak RSS (MiB, interpreter and model included): {s["peer_peak_rss_mib"]!.ToJsonString()}");
        }
        lines.Add($"{s["peers"]}");
        lines.Add($"peak RSS over the process before the model existed: save {s["peak_rss_save_mib"]} MiB, load {s["peak_rss_load_mib"]} MiB (state {s["state_mib"]} MiB); async-save arena {s["arena_mib"]} MiB");
        if (s["peak_rss_resharded_load_mib"] is { } resharded)
            lines.Add($"peak RSS one resharded (column-split) load added: {resharded} MiB for {s["resharded_slices_mib"]} MiB of slices; read buffers are bounded by {ReadBufferBudget.Shared.Capacity >> 20} MiB per process");
        if (s["incremental_frozen90_written_ratio"] is { } written) lines.Add($"incremental save with 90% of tensors frozen wrote {written} of the state's bytes (last repetition)");
        foreach (var row in s["rows"]!.AsArray().OfType<JsonObject>().Where(r => r["bytes_written_ratio"] is not null))
            lines.Add($"{row["name"]}: the block save wrote {row["bytes_written_ratio"]} of the bytes {row["reference"]} wrote (medians; {s["embedding_table_mib"]} MiB table, 1% of its rows changed)");
        return string.Join('\n', lines);
    }
}
