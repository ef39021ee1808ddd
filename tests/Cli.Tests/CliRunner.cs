using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Checkpointing.Cli.Tests;

public sealed record CliResult(int ExitCode, string Out, string Error)
{
    public JsonObject Json => JsonNode.Parse(Out) as JsonObject ?? throw new InvalidOperationException($"stdout is not a JSON object: {Out}");
}

/// <summary>Runs ckpt in-process (fast, most tests) or as a real child process (crash and kill tests).</summary>
public static class CliRunner
{
    public static async Task<CliResult> InProcess(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await CliApp.RunAsync(args, output, error);
        return new CliResult(code, output.ToString(), error.ToString());
    }

    /// <summary>The ckpt.dll built next to this test assembly's configuration.</summary>
    public static string CkptDll
    {
        get
        {
            var testBin = new DirectoryInfo(AppContext.BaseDirectory);
            var rid = testBin.Name;                     // linux-x64
            var tfm = testBin.Parent!.Name;             // net10.0
            var configuration = testBin.Parent.Parent!.Name; // Debug or Release
            var root = testBin;
            while (root is not null && !File.Exists(Path.Combine(root.FullName, "Checkpointing.slnx"))) root = root.Parent;
            var dll = Path.Combine(root?.FullName ?? throw new InvalidOperationException("repository root not found"), "src", "Cli", "bin", configuration, tfm, rid, "ckpt.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException($"ckpt.dll not built at {dll}; run `dotnet build Checkpointing.slnx`.");
        }
    }

    public static Process Start(params string[] args) => Start(launcher: [], environment: new Dictionary<string, string>(), args);

    /// <summary>Starts ckpt through <paramref name="launcher"/> (e.g. setpriv to drop privileges), or directly when it is empty, with extra environment variables.</summary>
    public static Process Start(IReadOnlyList<string> launcher, IReadOnlyDictionary<string, string> environment, IReadOnlyList<string> args)
    {
        var info = new ProcessStartInfo(launcher.Count > 0 ? launcher[0] : "dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in launcher.Skip(1)) info.ArgumentList.Add(a);
        if (launcher.Count > 0) info.ArgumentList.Add("dotnet");
        info.ArgumentList.Add(CkptDll);
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment) info.Environment[k] = v;
        return Process.Start(info) ?? throw new InvalidOperationException("could not start ckpt");
    }

    public static Task<CliResult> OutOfProcess(TimeSpan timeout, params string[] args) => OutOfProcess(timeout, launcher: [], args);

    public static Task<CliResult> OutOfProcess(TimeSpan timeout, IReadOnlyList<string> launcher, IReadOnlyList<string> args) =>
        Run(timeout, launcher, new Dictionary<string, string>(), args, whileRunning: null);

    /// <summary>Runs ckpt as a child process; <paramref name="whileRunning"/> gets its PID and runs until it exits.</summary>
    public static Task<CliResult> OutOfProcessWithEnvironment(TimeSpan timeout, Dictionary<string, string> environment, string[] args, Func<int, CancellationToken, Task>? whileRunning = null) =>
        Run(timeout, launcher: [], environment, args, whileRunning);

    private static async Task<CliResult> Run(TimeSpan timeout, IReadOnlyList<string> launcher, IReadOnlyDictionary<string, string> environment, IReadOnlyList<string> args, Func<int, CancellationToken, Task>? whileRunning)
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
            throw new TimeoutException($"ckpt {string.Join(' ', args)} did not finish within {timeout}");
        }
        finally
        {
            await exited.CancelAsync();
            await watcher;
        }
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }
}
