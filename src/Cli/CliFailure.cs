using System.Net.Sockets;
using System.Text.RegularExpressions;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Checkpointing.Storage;
using Orleans.Runtime.Messaging;

namespace Checkpointing.Cli;

/// <summary>
/// A failed command as the user sees it: a stable <see cref="Kind"/> for scripts and one line of
/// text. Every exception a command can end with is turned into one of these here, and only here.
/// </summary>
public sealed partial record CliFailure(string Kind, string Message)
{
    /// <summary>For a usage error, the command whose <c>--help</c> answers it ("ckpt run create").</summary>
    public string? HelpCommand { get; init; }

    /// <summary>The exit code of every failure but a usage error (<see cref="CliApp.UsageExitCode"/>).</summary>
    public const int FailureExitCode = 1;
    private const int MaxMessageLength = 2000;

    // Linux errno values .NET carries in IOException.HResult for failed file system calls.
    private const int NoSpace = 28;
    private const int ReadOnlyFileSystem = 30;
    private const int QuotaExceeded = 122;

    /// <summary>The process's exit code for this failure: 2 for a usage error, 1 for any other.</summary>
    public int ExitCode => Kind == "usage" ? CliApp.UsageExitCode : FailureExitCode;

    /// <summary>
    /// The failure an exception stands for. A cause from the machine or the network (disk full,
    /// read-only, permission, storage or silo unreachable) wins over the wrappers around it, so a
    /// background save that failed for lack of space reads "disk full: …".
    /// </summary>
    public static CliFailure From(Exception exception)
    {
        foreach (var cause in CausesOf(exception))
        {
            if (Environmental(cause) is { } failure) return failure;
        }
        return Direct(exception);
    }

    /// <summary>The exception and its causes, outermost first (every branch of an AggregateException).</summary>
    private static IEnumerable<Exception> CausesOf(Exception exception)
    {
        var pending = new Stack<Exception>();
        pending.Push(exception);
        while (pending.Count > 0)
        {
            var e = pending.Pop();
            yield return e;
            if (e is AggregateException aggregate)
            {
                for (var i = aggregate.InnerExceptions.Count - 1; i >= 0; i--) pending.Push(aggregate.InnerExceptions[i]);
            }
            else if (e.InnerException is { } inner)
            {
                pending.Push(inner);
            }
        }
    }

    private static CliFailure? Environmental(Exception e) => e switch
    {
        IOException io when io.HResult is NoSpace or QuotaExceeded => new("disk_full", "disk full: " + OneLine(io.Message)),
        IOException io when io.HResult == ReadOnlyFileSystem => new("read_only", "read-only file system: " + OneLine(io.Message)),
        UnauthorizedAccessException denied => new("permission_denied", "permission denied: " + OneLine(denied.Message)),
        SiloUnreachableException silo => new("silo_unreachable", OneLine(silo.Message)),
        TrainerAgent.StorageOutageException outage => new("storage_unavailable", OneLine(outage.Message)),
        ConnectionFailedException or OrleansMessageRejectionException => new("silo_unreachable", "lost the connection to the cluster: " + OneLine(e.Message)),
        Azure.RequestFailedException request => new("storage_unavailable", StorageRequest(request)),
        HttpRequestException or SocketException => new("network", "network error: " + OneLine(e.Message)),
        _ => null,
    };

    private static CliFailure Direct(Exception e) => e switch
    {
        UsageException usage => new("usage", OneLine(e.Message)) { HelpCommand = usage.HelpCommand },
        CheckpointFormatException or InvalidDataException => new("bad_input", OneLine(e.Message)),
        FileNotFoundException or DirectoryNotFoundException => new("not_found", OneLine(e.Message)),
        // Refusals that protect the user's files, not I/O faults.
        SymbolicLinkRefusedException or ForeignContentException or RunRefusedException => new("refused", OneLine(e.Message)),
        IOException => new("io", "I/O error: " + OneLine(e.Message)),
        TimeoutException => new("timeout", OneLine(e.Message)),
        OperationCanceledException => new("cancelled", OneLine(e.Message)),
        NotSupportedException => new("unsupported", OneLine(e.Message)),
        ArgumentException or InvalidOperationException or FormatException or OrleansException => new("failed", OneLine(e.Message)),
        _ => new("internal", $"internal error ({e.GetType().Name}): {OneLine(e.Message)}"),
    };

    /// <summary>Azure's messages carry status, headers and content on many lines: keep the status, the code and the first line.</summary>
    private static string StorageRequest(Azure.RequestFailedException e)
    {
        var firstLine = e.Message.Split('\n', 2)[0].Trim();
        return e.Status == 0
            ? "cannot reach storage: " + OneLine(firstLine)
            : $"storage request failed (HTTP {e.Status}{(e.ErrorCode is null ? "" : " " + e.ErrorCode)}): {OneLine(firstLine)}";
    }

    /// <summary>The text on one line: runs of whitespace (newlines included) become one space; very long texts are cut.</summary>
    public static string OneLine(string text)
    {
        var line = Whitespace().Replace(text, " ").Trim();
        return line.Length <= MaxMessageLength ? line : line[..MaxMessageLength] + " …";
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
