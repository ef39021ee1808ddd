using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Checkpointing.Processes;

/// <summary>A process the job launcher started: its JSON-line events, its stderr tail, and kill by PID.</summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly IDisposable _exitGuard;
    private readonly OutputTail _errors = new(20);
    private readonly Channel<JsonObject> _events = Channel.CreateUnbounded<JsonObject>();
    private StreamWriter? _log;

    /// <summary>Where <see cref="LogFile"/> writes every child's whole stderr, one file per process: for diagnosing a lab run after the fact.</summary>
    public const string LogFolderVariable = "CKPT_CHILD_LOG_DIR";

    private ChildProcess(Process process)
    {
        _process = process;
        _exitGuard = ProcessEnding.KillWithThisProgram(process); // a SIGTERM to ckpt must not leave its silos and agents running
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) _events.Writer.TryComplete();
            else if (e.Data.StartsWith('{') && ParseOrNull(e.Data) is { } json) _events.Writer.TryWrite(json);
        };
        _log = LogFile(process);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            _errors.Add(e.Data);
            lock (_errors) _log?.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {e.Data}");
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;
    public ChannelReader<JsonObject> Events => _events.Reader;
    public string ErrorTail => string.Join('\n', _errors.Lines);

    public static ChildProcess Start(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) info.Environment[k] = v;
        return new ChildProcess(Process.Start(info) ?? throw new InvalidOperationException($"could not start {fileName}"));
    }

    /// <summary><c>$CKPT_CHILD_LOG_DIR/PID.log</c>, starting with the command line, when that variable names a folder; else null.</summary>
    private static StreamWriter? LogFile(Process process)
    {
        if (Environment.GetEnvironmentVariable(LogFolderVariable) is not { Length: > 0 } folder) return null;
        var log = new StreamWriter(Path.Combine(folder, $"{process.Id}.log")) { AutoFlush = true };
        log.WriteLine($"{process.StartInfo.FileName} {string.Join(' ', process.StartInfo.ArgumentList)}");
        return log;
    }

    private static JsonObject? ParseOrNull(string line)
    {
        try { return JsonNode.Parse(line) as JsonObject; }
        catch (System.Text.Json.JsonException) { return null; }
    }

    /// <summary>SIGKILL, like a machine failure.</summary>
    public Task KillAsync() => ProcessEnding.KillAsync(_process);

    /// <summary>SIGTERM so the process shuts down gracefully; SIGKILL if it has not exited in time.</summary>
    public Task StopAsync(TimeSpan grace) => ProcessEnding.TerminateAsync(_process, grace);

    /// <summary>Waits until a silo answers <c>GET /readyz</c> on <paramref name="healthPort"/> with success: started, its storage reachable.</summary>
    public async Task WaitReadyAsync(int healthPort, string host = "127.0.0.1")
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(90))
        {
            if (HasExited) throw new InvalidOperationException($"the process exited with {ExitCode}:\n{ErrorTail}");
            try
            {
                if ((await http.GetAsync(new Uri($"http://{host}:{healthPort}/readyz"))).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(250);
        }
        throw new TimeoutException($"not ready within 90 s:\n{ErrorTail}");
    }

    public Task WaitForExitAsync(CancellationToken cancellationToken = default) => _process.WaitForExitAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        _exitGuard.Dispose();
        await KillAsync();
        _process.Dispose();
        lock (_errors)
        {
            _log?.Dispose();
            _log = null; // stderr lines the killed process still had in flight are dropped
        }
    }
}
