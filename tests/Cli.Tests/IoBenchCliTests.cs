namespace Checkpointing.Cli.Tests;

/// <summary><c>ckpt-bench io</c> end to end, small: every row runs against its real reference (dd, python3 torch, Azurite).</summary>
[Collection(nameof(CliCollection))]
public sealed class IoBenchCliTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task Every_named_row_is_measured_against_its_reference_and_printed_as_one_json_object()
    {
        var result = await CliRunner.Bench.OutOfProcess(Limit, "io", "--size-mib", "8", "--repeat", "2", "--tensors", "4", "--shards", "2", "--peers", "off", "--json");

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Out}\n{result.Error}");
        Assert.Equal("peers: off (--peers off)", (string)result.Json["peers"]!);
        var summary = result.Json;
        Assert.Equal(8, (long)summary["size_mib"]!);
        Assert.Equal(2, (long)summary["repeat"]!);
        Assert.Equal(2, (long)summary["shards"]!);
        var rows = summary["rows"]!.AsArray().ToDictionary(r => (string)r!["name"]!, r => r!.AsObject());
        string[] compressionSets = ["bf16_random", "bf16_trained", "f16_random", "f16_trained", "f32_random", "f32_trained"];
        Assert.Equal(
            new[] { "async_stall_vs_memcpy", "blob_load_vs_sdk", "blob_load_vs_sdk_fresh", "blob_save_vs_sdk", "compress_bf16_save_500mbps_vs_plain_save",
             "embedding_blocks_load_vs_full_load", "embedding_blocks_save_vs_full_save", "embedding_blocks_save_vs_incremental_save",
             "incremental_changed_vs_full_save", "incremental_frozen90_vs_full_save",
             "load_cold_vs_read_fresh", "load_cold_vs_torch_load", "load_warm_vs_read_fresh", "load_warm_vs_torch_load", "local_save_vs_dd", "local_save_vs_filestream", "local_save_vs_torch_save",
             "memory_stall_vs_memcpy", "replica_transfer_vs_loopback", "resharded_columns_load_vs_consolidated_load", "resharded_rows_load_vs_consolidated_load" }
                .Concat(compressionSets.SelectMany(set => new[] { $"compress_{set}_vs_zstd", $"decompress_{set}_vs_zstd" })).Order(StringComparer.Ordinal),
            rows.Keys.Order(StringComparer.Ordinal));
        // Trained bf16 weights compress better than zstd alone does; random bytes are stored as they are (ratio 1, never below).
        Assert.True((double)rows["compress_bf16_trained_vs_zstd"]["compression_ratio"]! > (double)rows["compress_bf16_trained_vs_zstd"]["zstd_compression_ratio"]!,
            rows["compress_bf16_trained_vs_zstd"].ToJsonString());
        Assert.All(compressionSets.Where(set => set.EndsWith("random", StringComparison.Ordinal)), set => Assert.Equal(1.0, (double)rows[$"compress_{set}_vs_zstd"]["compression_ratio"]!));
        Assert.All(compressionSets, set => Assert.True((double)rows[$"decompress_{set}_vs_zstd"]["mb_per_s_per_core"]! > 0));
        // A table with 1% of its rows changed: the block save writes those rows, their hashes and a map, far below the 5% of a full save.
        Assert.InRange((double)rows["embedding_blocks_save_vs_full_save"]["bytes_written_ratio"]!, 0.005, 0.05);
        Assert.InRange((double)rows["embedding_blocks_save_vs_incremental_save"]["bytes_written_ratio"]!, 0.005, 0.05);
        // Three ranks loading their columns read their slices' bytes, within the coalescing allowance.
        Assert.InRange((double)summary["resharded_read_ratio"]!, 1.0, 1.1);
        foreach (var (name, row) in rows)
        {
            var ours = (double)row["ours_median_s"]!;
            var reference = (double)row["reference_median_s"]!;
            Assert.True(ours > 0 && reference > 0, $"{name}: {row.ToJsonString()}");
            Assert.True((double)row["ours_min_s"]! <= ours && (double)row["reference_min_s"]! <= reference, $"{name}: {row.ToJsonString()}");
            var ratio = (double)row["ratio"]!;
            Assert.True(ratio > 0, $"{name}: {row.ToJsonString()}");
            // The ratio is of unrounded medians; the printed seconds are rounded to 1 ms, which only matters for the tiny ones.
            if (reference >= 0.05 && ours >= 0.05) Assert.InRange(ratio, ours / reference * 0.95, ours / reference * 1.05);
            Assert.False(string.IsNullOrWhiteSpace((string?)row["reference"]), name);
        }
        // The save and the load peak at least at the model they hold (8 MiB of state) and the async arena holds one copy of it.
        Assert.True((double)summary["peak_rss_save_mib"]! >= 7.9, summary.ToJsonString());
        Assert.True((double)summary["peak_rss_load_mib"]! >= 7.9, summary.ToJsonString());
        Assert.Equal((double)summary["state_mib"]!, (double)summary["arena_mib"]!);
    }

    /// <summary>The peers' rows: PyTorch 2, DCP and safetensors from scripts/peers.sh's chroot (scripts/test.sh builds it), each measured, the best named.</summary>
    [Fact]
    public async Task Every_peer_row_measures_the_peer_on_the_same_state_and_the_best_peer_is_named_per_operation()
    {
        PeersChroot.RequireReady();
        var result = await CliRunner.Bench.OutOfProcess(Limit, "io", "--size-mib", "8", "--repeat", "1", "--tensors", "4", "--peers", "on", "--rows",
            "local_save_vs_torch2_save,local_save_vs_dcp_save,local_save_vs_safetensors_save,load_cold_vs_torch2_mmap_load,load_warm_vs_safetensors_load,load_warm_vs_dcp_load", "--json");

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Out}\n{result.Error}");
        var summary = result.Json;
        var rows = summary["rows"]!.AsArray().ToDictionary(r => (string)r!["name"]!, r => r!.AsObject());
        Assert.Equal(6, rows.Count);
        Assert.All(rows.Values, row => Assert.True((double)row["reference_median_s"]! > 0 && (double)row["ours_median_s"]! > 0, row.ToJsonString()));
        var best = summary["best_peer"]!.AsObject();
        Assert.Equal(["load_cold", "load_warm", "save"], best.Select(b => b.Key).Order(StringComparer.Ordinal));
        var save = best["save"]!;
        var fastestSave = rows.Where(r => r.Key.StartsWith("local_save", StringComparison.Ordinal)).Min(r => (double)r.Value["reference_median_s"]!);
        Assert.Equal(fastestSave, (double)save["peer_median_s"]!, 6);
        Assert.InRange((double)save["ratio"]!, (double)save["ours_median_s"]! / fastestSave * 0.99, (double)save["ours_median_s"]! / fastestSave * 1.01);
        Assert.True((double)summary["peer_peak_rss_mib"]!["safetensors_load_warm"]! > 8, summary.ToJsonString()); // the model alone is 8 MiB
    }

    [Fact]
    public async Task A_peer_row_asked_for_without_the_peers_chroot_fails_naming_the_script_that_builds_it()
    {
        var result = await CliRunner.Bench.OutOfProcess(Limit, "io", "--size-mib", "8", "--peers-root", "/nonexistent", "--rows", "load_warm_vs_dcp_load", "--json");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("scripts/peers.sh", (string)result.Json["error"]!);
    }

    [Fact]
    public async Task An_unknown_row_is_a_usage_error_naming_the_known_rows()
    {
        var result = await CliRunner.Bench.OutOfProcess(Limit, "io", "--rows", "local_save_vs_nothing", "--json");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("local_save_vs_filestream", (string)result.Json["error"]!);
    }
}
