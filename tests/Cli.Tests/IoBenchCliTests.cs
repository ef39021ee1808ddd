namespace Checkpointing.Cli.Tests;

/// <summary><c>ckpt-bench io</c> end to end, small: every row runs against its real reference (dd, python3 torch, Azurite).</summary>
[Collection(nameof(CliCollection))]
public sealed class IoBenchCliTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task Every_named_row_is_measured_against_its_reference_and_printed_as_one_json_object()
    {
        var result = await CliRunner.Bench.OutOfProcess(Limit, "io", "--size-mib", "8", "--repeat", "2", "--tensors", "4", "--shards", "2", "--json");

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Out}\n{result.Error}");
        var summary = result.Json;
        Assert.Equal(8, (long)summary["size_mib"]!);
        Assert.Equal(2, (long)summary["repeat"]!);
        Assert.Equal(2, (long)summary["shards"]!);
        var rows = summary["rows"]!.AsArray().ToDictionary(r => (string)r!["name"]!, r => r!.AsObject());
        Assert.Equal(
            ["async_stall_vs_memcpy", "blob_load_vs_sdk", "blob_save_vs_sdk", "incremental_changed_vs_full_save", "incremental_frozen90_vs_full_save",
             "load_cold_vs_torch_load", "load_warm_vs_torch_load", "local_save_vs_dd", "local_save_vs_filestream", "local_save_vs_torch_save",
             "resharded_columns_load_vs_consolidated_load", "resharded_rows_load_vs_consolidated_load"],
            rows.Keys.Order(StringComparer.Ordinal));
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

    [Fact]
    public async Task An_unknown_row_is_a_usage_error_naming_the_known_rows()
    {
        var result = await CliRunner.Bench.OutOfProcess(Limit, "io", "--rows", "local_save_vs_nothing", "--json");

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("local_save_vs_filestream", (string)result.Json["error"]!);
    }
}
