using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Checkpointing.Cli.Tests;

public sealed record CliResult(int ExitCode, string Out, string Error)
{
    public JsonObject Json => JsonNode.Parse(Out) as JsonObject ?? throw new InvalidOperationException($"stdout is not a JSON object: {Out}");
}

/// <summary>
/// Runs one of the command-line tools (ckpt, ckpt-lab, ckpt-bench) in-process (fast, most tests) or as a real
/// child process (crash and kill tests).
/// </summary>
public sealed class CliRunner
{
    public static readonly CliRunner Ckpt = new(CliApp.Ckpt, Path.Combine("src", "Cli"));
    public static readonly CliRunner Lab = new(Checkpointing.Lab.LabTool.Definition, Path.Combine("tools", "Lab"));
    public static readonly CliRunner Bench = new(Checkpointing.Benchmarks.Throughput.BenchTool.Definition, Path.Combine("benchmarks", "Throughput"));

    private readonly CliTool _tool;
    private readonly string _project;

    private CliRunner(CliTool tool, string project) => (_tool, _project) = (tool, project);

    public CliTool Tool => _tool;

    /// <summary>The runner of the tool named <paramref name="name"/> (for theories, whose data are strings).</summary>
    public static CliRunner Named(string name) => new[] { Ckpt, Lab, Bench }.Single(runner => runner._tool.Name == name);

    public async Task<CliResult> InProcess(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await CliApp.RunAsync(_tool, args, output, error);
        return new CliResult(code, output.ToString(), error.ToString());
    }

    /// <summary>The tool's dll built in its project folder, in the same configuration as this test assembly.</summary>
    public string Dll
    {
        get
        {
            var testBin = new DirectoryInfo(AppContext.BaseDirectory);
            var rid = testBin.Name;                     // linux-x64
            var tfm = testBin.Parent!.Name;             // net10.0
            var configuration = testBin.Parent.Parent!.Name; // Debug or Release
            var root = testBin;
            while (root is not null && !File.Exists(Path.Combine(root.FullName, "Checkpointing.slnx"))) root = root.Parent;
            var dll = Path.Combine(root?.FullName ?? throw new InvalidOperationException("repository root not found"), _project, "bin", configuration, tfm, rid, _tool.Name + ".dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException($"{_tool.Name}.dll not built at {dll}; run `dotnet build Checkpointing.slnx`.");
        }
    }

    public Process Start(params string[] args) => Start(launcher: [], environment: new Dictionary<string, string>(), args);

    /// <summary>Starts the tool through <paramref name="launcher"/> (e.g. setpriv to drop privileges), or directly when it is empty, with extra environment variables.</summary>
    public Process Start(IReadOnlyList<string> launcher, IReadOnlyDictionary<string, string> environment, IReadOnlyList<string> args)
    {
        var info = new ProcessStartInfo(launcher.Count > 0 ? launcher[0] : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in launcher.Skip(1)) info.ArgumentList.Add(a);
        if (launcher.Count > 0) info.ArgumentList.Add("dotnet");
        info.ArgumentList.Add(Dll);
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment) info.Environment[k] = v;
        return Process.Start(info) ?? throw new InvalidOperationException($"could not start {_tool.Name}");
    }

    public Task<CliResult> OutOfProcess(TimeSpan timeout, params string[] args) => OutOfProcess(timeout, launcher: [], args);

    public Task<CliResult> OutOfProcess(TimeSpan timeout, IReadOnlyList<string> launcher, IReadOnlyList<string> args) =>
        Run(timeout, launcher, new Dictionary<string, string>(), args, whileRunning: null);

    /// <summary>Runs the tool as a child process; <paramref name="whileRunning"/> gets its PID and runs until it exits.</summary>
    public Task<CliResult> OutOfProcessWithEnvironment(TimeSpan timeout, Dictionary<string, string> environment, string[] args, Func<int, CancellationToken, Task>? whileRunning = null) =>
        Run(timeout, launcher: [], environment, args, whileRunning);

    private async Task<CliResult> Run(TimeSpan timeout, IReadOnlyList<string> launcher, IReadOnlyDictionary<string, string> environment, IReadOnlyList<string> args, Func<int, CancellationToken, Task>? whileRunning)
    {
        using var process = Start(launcher, environment, args);
        using var exited = new CancellationTokenSource();
        var watcher = whileRunning?.Invoke(process.Id, exited.Token) ?? Task.CompletedTask;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{_tool.Name} {string.Join(' ', args)} did not finish within {timeout}");
        }
        finally
        {
            await exited.CancelAsync();
            await watcher;
        }
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }
}
