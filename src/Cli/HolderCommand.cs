using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Checkpointing.TrainerAgent;

namespace Checkpointing.Cli;

/// <summary>
/// <c>ckpt holder</c>: a memory-tier holder (docs/memory-tier.md), one per host and tenant, beside the training processes
/// so that snapshots outlive them. Prints one JSON line (<c>{"event": "listening", "endpoint": …, "host": …}</c>) once it
/// listens, then serves until SIGTERM or Ctrl-C; what it kept goes with it.
/// </summary>
public static class HolderCommand
{
    /// <summary>The command, its action writing through <paramref name="context"/>.</summary>
    public static Command Build(CliContext context)
    {
        var listen = CliOptions.Text("--listen", "address:port to listen on (port 0: a free one)", "ADDRESS:PORT");
        var host = CliOptions.Text("--host", "the host name it announces for placement (default: this machine's)", "NAME");
        var maxBytes = CliOptions.Integer("--max-mib", "the most MiB of snapshots it keeps at once", 16 * 1024, min: 1);
        var command = new Command("holder", $"keep ranks' memory-tier snapshots on this host and serve them to the job's agents (token: env {ClusterOptions.TokenVariable})")
            .With(listen, host, maxBytes);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var options = new HolderOptions
            {
                Listen = parse.GetValue(listen) ?? "127.0.0.1:0",
                Host = parse.GetValue(host) ?? Environment.MachineName,
                MaxBytes = parse.GetValue(maxBytes) << 20,
                TenantToken = Environment.GetEnvironmentVariable(ClusterOptions.TokenVariable)
                    ?? throw new UsageException($"a holder needs its job's tenant token in env {ClusterOptions.TokenVariable}", "ckpt holder"),
            };
            if (!System.Net.IPEndPoint.TryParse(options.Listen, out _)) throw new UsageException($"--listen {options.Listen} is not address:port", "ckpt holder");
            await using var server = await HolderServer.StartAsync(options, cancellationToken: cancellationToken);
            var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, signal => { signal.Cancel = true; stopped.TrySetResult(); });
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, signal => { signal.Cancel = true; stopped.TrySetResult(); });
            lock (context.Out)
            {
                context.Out.WriteLine(new JsonObject { ["event"] = "listening", ["endpoint"] = server.Endpoint, ["host"] = server.Host, ["max_bytes"] = options.MaxBytes }.ToJsonString());
                context.Out.Flush();
            }
            await stopped.Task.WaitAsync(cancellationToken);
            return 0;
        });
        return command;
    }
}
