using Checkpointing.TestSupport;

namespace Checkpointing.Cli.Tests;

/// <summary>A hostile file given to the CLI ends with exit code 1 and one line naming the file and the limit.</summary>
[Collection(nameof(CliCollection))]
public sealed class CliBudgetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-budget-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Inspect_of_a_stride_0_view_over_budget_prints_one_line_naming_the_file_and_the_limit()
    {
        var path = Path.Combine(_dir, "hostile.pth");
        await File.WriteAllBytesAsync(path, HostileFiles.ViewPth(size: [1L << 28], stride: [0]));

        var result = await CliRunner.Ckpt.InProcess("inspect", path);

        Assert.Equal(1, result.ExitCode);
        Assert.Equal("", result.Out);
        var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("ckpt: hostile.pth: read budget failed: ", line);
        Assert.Contains("MaterializedBytesFloor + MaterializedBytesPerFileByte", line);
    }

    [Fact]
    public async Task Inspect_of_billion_laughs_prints_one_line_naming_the_object_limit()
    {
        var path = Path.Combine(_dir, "laughs.pkl");
        await File.WriteAllBytesAsync(path, HostileFiles.BillionLaughs());

        var result = await CliRunner.Ckpt.InProcess("inspect", path);

        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("ckpt: laughs.pkl: read budget failed: ", line);
        Assert.Contains("MaxObjects", line);
    }

    /// <summary>In a child process: the first release died here of a stack overflow (exit 134), which would kill a test host.</summary>
    [Fact]
    public async Task Inspect_of_a_dict_key_nested_100k_deep_exits_1_in_a_real_process()
    {
        var path = Path.Combine(_dir, "deep.pkl");
        await File.WriteAllBytesAsync(path, HostileFiles.DeepTupleKey());

        var result = await CliRunner.Ckpt.OutOfProcess(TimeSpan.FromMinutes(2), "inspect", path);

        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("ckpt: deep.pkl: read budget failed: ", line);
        Assert.Contains("MaxKeyItems", line);
    }
}
