using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Checkpointing.Cli.Tests;

/// <summary>A training rank as a child process (`ckpt-lab agent`; rank 0 of acme/r1 unless told); its stdout JSON events are read as they come.</summary>
public sealed class AgentProcess : IAsyncDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(2);
    private readonly Process _process;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private readonly List<string> _all = [];
    private readonly Task<string> _stderr;
    private readonly Task _reading;

    private AgentProcess(Process process)
    {
        _process = process;
        _stderr = process.StandardError.ReadToEndAsync();
        _reading = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                lock (_all) _all.Add(line);
                await _lines.Writer.WriteAsync(line);
            }
            _lines.Writer.Complete();
        });
    }

    public static AgentProcess Start(long epoch, string storage, string[] cluster, IReadOnlyDictionary<string, string>? environment = null,
        string run = "acme/r1", int rank = 0, int worldSize = 1, string[]? options = null) => new(CliRunner.Lab.Start(
        launcher: [], environment ?? new Dictionary<string, string>(),
        ["agent", "--run", run, "--rank", $"{rank}", "--world-size", $"{worldSize}", "--epoch", $"{epoch}", "--width", "32", "--storage", storage, .. options ?? [], .. cluster]));

    /// <summary>The agent's process id.</summary>
    public int Pid => _process.Id;

    /// <summary>SIGKILLs the agent (and anything it started): no chance to say goodbye, as a host fault or a spot reclaim.</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    /// <summary>The next event of <paramref name="kind"/>; fails if the agent ends or is silent for too long first.</summary>
    public async Task<JsonObject> Next(string kind)
    {
        using var timeout = new CancellationTokenSource(Limit);
        await foreach (var line in _lines.Reader.ReadAllAsync(timeout.Token))
        {
            if (JsonNode.Parse(line) is JsonObject e && (string?)e["event"] == kind) return e;
        }
        throw new InvalidOperationException($"the agent ended before a '{kind}' event; stderr: {await _stderr}");
    }

    public async Task<(int ExitCode, List<string> Lines, string Stderr)> WaitForExit()
    {
        using var timeout = new CancellationTokenSource(Limit);
        await _process.WaitForExitAsync(timeout.Token);
        await _reading;
        var stderr = await _stderr;
        lock (_all) return (_process.ExitCode, _all.ToList(), stderr);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
