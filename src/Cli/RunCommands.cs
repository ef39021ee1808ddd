using System.Globalization;
using System.Text.Json.Nodes;
using Checkpointing.Abstractions;
using Checkpointing.Abstractions.Runs;
using Checkpointing.TrainerAgent.Cluster;

namespace Checkpointing.Cli;

/// <summary><c>ckpt run create|show|ls|policy|delete|attempt|checkpoint-now</c> and <c>ckpt token</c>: the control plane from a terminal.</summary>
public static class RunCommands
{
    public static async Task<int> RunAsync(CliArguments args, CliContext context)
    {
        var verb = args.Positional(0, "run subcommand (create, show, ls, policy, delete, attempt, checkpoint-now)");
        var json = args.Flag("json");
        var options = ClusterOptions.Read(args);
        switch (verb)
        {
            case "create":
            {
                var id = RunId.Parse(args.Positional(1, "tenant/run"));
                var policy = ReadPolicy(args, new PeriodicPolicy(20));
                args.ThrowOnUnknown(2);
                await using var connection = await ClusterOptions.ConnectAsync(options);
                Print(context, json, await connection.Run(id).Create(policy));
                return 0;
            }
            case "show":
            {
                var id = RunId.Parse(args.Positional(1, "tenant/run"));
                args.ThrowOnUnknown(2);
                await using var connection = await ClusterOptions.ConnectAsync(options);
                Print(context, json, await connection.Run(id).Get());
                return 0;
            }
            case "policy":
            {
                var id = RunId.Parse(args.Positional(1, "tenant/run"));
                await using var connection = await ClusterOptions.ConnectAsync(options);
                var current = (await connection.Run(id).Get()).Policy;
                var policy = ReadPolicy(args, current);
                args.ThrowOnUnknown(2);
                Print(context, json, await connection.Run(id).SetPolicy(policy));
                return 0;
            }
            case "ls":
            {
                var tenant = args.Positional(1, "tenant");
                args.ThrowOnUnknown(2);
                await using var connection = await ClusterOptions.ConnectAsync(options);
                var view = await connection.Tenant(tenant).Get();
                if (json)
                {
                    context.Out.WriteLine(RunJson.Of(view).ToJsonString());
                }
                else
                {
                    foreach (var (run, bytes) in view.RetainedBytesByRun.OrderBy(r => r.Key, StringComparer.Ordinal)) context.Out.WriteLine($"{tenant}/{run,-30} {bytes,16:N0} bytes");
                }
                return 0;
            }
            case "delete":
            {
                var id = RunId.Parse(args.Positional(1, "tenant/run"));
                args.ThrowOnUnknown(2);
                await using var connection = await ClusterOptions.ConnectAsync(options);
                await connection.Run(id).Delete();
                context.Out.WriteLine(json ? new JsonObject { ["deleted"] = id.Key }.ToJsonString() : $"deleted {id}");
                return 0;
            }
            case "attempt":
            {
                var id = RunId.Parse(args.Positional(1, "tenant/run"));
                args.ThrowOnUnknown(2);
                await using var connection = await ClusterOptions.ConnectAsync(options);
                var epoch = await connection.Run(id).StartAttempt();
                context.Out.WriteLine(json ? new JsonObject { ["run"] = id.Key, ["epoch"] = epoch }.ToJsonString() : epoch.ToString(CultureInfo.InvariantCulture));
                return 0;
            }
            case "checkpoint-now":
            {
                var id = RunId.Parse(args.Positional(1, "tenant/run"));
                var reason = args.String("reason") ?? "requested from the CLI";
                args.ThrowOnUnknown(2);
                await using var connection = await ClusterOptions.ConnectAsync(options);
                await connection.Run(id).RequestCheckpointNow(reason);
                context.Out.WriteLine(json ? new JsonObject { ["run"] = id.Key, ["requested"] = reason }.ToJsonString() : $"checkpoint requested for {id}");
                return 0;
            }
            default:
                throw new UsageException($"unknown run subcommand '{verb}'");
        }
    }

    /// <summary><c>ckpt history TENANT/RUN</c>: the run grain's checkpoint history.</summary>
    public static async Task<int> HistoryAsync(CliArguments args, CliContext context)
    {
        var id = RunId.Parse(args.Positional(0, "tenant/run"));
        var json = args.Flag("json");
        var options = ClusterOptions.Read(args);
        args.ThrowOnUnknown(1);
        await using var connection = await ClusterOptions.ConnectAsync(options);
        var history = await connection.Run(id).GetHistory();
        if (json)
        {
            context.Out.WriteLine(RunJson.Of(id, history).ToJsonString());
            return 0;
        }
        context.Out.WriteLine($"{"AT (UTC)",-20} {"KIND",-5} {"CHECKPOINT",-24} {"BYTES",14} {"SECONDS",9} {"MB/S",9} {"STALL S",8}");
        foreach (var h in history)
        {
            var rate = h.Seconds > 0 ? (h.Bytes / h.Seconds / 1e6).ToString("F1", CultureInfo.InvariantCulture) : "-";
            var stall = h.StallSeconds?.ToString("F3", CultureInfo.InvariantCulture) ?? "-";
            var kind = h.Kind == HistoryEntry.Load ? $"load (rank {h.Rank})" : h.Kind;
            context.Out.WriteLine($"{h.AtUtc.UtcDateTime:yyyy-MM-dd HH:mm:ss} {kind,-5} {h.Name,-24} {h.Bytes,14:N0} {h.Seconds,9:F3} {rate,9} {stall,8}");
        }
        return 0;
    }

    private static PeriodicPolicy ReadPolicy(CliArguments args, PeriodicPolicy current) => new PeriodicPolicy(
        (int)args.Long("period", current.Period, min: 1),
        args.OptionalLong("max-iter", min: 1) ?? current.MaxIter,
        (int?)args.OptionalLong("max-to-keep", min: 1) ?? current.MaxToKeep,
        args.String("prefix") ?? current.FilePrefix).Validated();

    public static void Print(CliContext context, bool json, RunView view) => Print(context.Out, json, view);

    public static void Print(TextWriter output, bool json, RunView view)
    {
        if (json)
        {
            output.WriteLine(RunJson.Of(view).ToJsonString());
            return;
        }
        output.WriteLine($"run {view.Id}  policy period={view.Policy.Period} max_iter={view.Policy.MaxIter?.ToString(CultureInfo.InvariantCulture) ?? "-"} max_to_keep={view.Policy.MaxToKeep?.ToString(CultureInfo.InvariantCulture) ?? "-"} prefix={view.Policy.FilePrefix}  attempt {view.Epoch}");
        output.WriteLine($"{"",1} {"NAME",-24} {"ITERATION",10} {"BYTES",14} {"RANKS",5} {"COMMITTED (UTC)",-20}");
        foreach (var c in view.Catalog)
        {
            output.WriteLine($"{(c.Name == view.LastCheckpoint ? "*" : " "),1} {c.Name,-24} {c.Iteration?.ToString(CultureInfo.InvariantCulture) ?? "-",10} {c.Bytes,14:N0} {c.WorldSize,5} {c.CommittedUtc.UtcDateTime:yyyy-MM-dd HH:mm:ss}");
        }
        foreach (var p in view.Pending) output.WriteLine($"  (pending) {p.Name}: {p.RanksReported} of {p.WorldSize} ranks reported");
        output.WriteLine(view.LastCheckpoint is null ? "no checkpoint yet" : $"* = last checkpoint ({view.LastCheckpoint})");
    }

    public const string SigningKeyVariable = "CKPT_SIGNING_KEY";

    /// <summary>
    /// <c>ckpt token --tenant T [--hours 24] [--key-file FILE]</c>: the operator issues a tenant credential
    /// offline, with the silo's signing key from env CKPT_SIGNING_KEY or a file, never from argv.
    /// </summary>
    public static int Token(CliArguments args, CliContext context)
    {
        if (args.String("key") is not null)
            throw new UsageException($"--key is refused: a key on the command line is readable by every user of this machine (ps, /proc/PID/cmdline) and stays in shell history; set env {SigningKeyVariable} or give --key-file FILE");
        var keyFile = args.String("key-file");
        var tenant = args.String("tenant") ?? throw new UsageException("token needs --tenant NAME ('*' for the operator)");
        var hours = args.Long("hours", 24, min: 1);
        args.ThrowOnUnknown(0);
        var (key, source) = keyFile is not null ? (ReadKeyFile(keyFile), keyFile)
            : (Environment.GetEnvironmentVariable(SigningKeyVariable), $"env {SigningKeyVariable}");
        if (string.IsNullOrWhiteSpace(key)) throw new UsageException($"token needs the silo's Tenancy:SigningKey (base64): set env {SigningKeyVariable} or give --key-file FILE");
        byte[] keyBytes;
        try { keyBytes = Convert.FromBase64String(key.Trim()); }
        catch (FormatException) { throw new UsageException($"the signing key in {source} is not base64"); }
        if (keyBytes.Length < 32) throw new UsageException($"the signing key in {source} has {keyBytes.Length} bytes; the silo needs at least 32");
        context.Out.WriteLine(TenantTokens.Issue(keyBytes, tenant, DateTimeOffset.UtcNow.AddHours(hours)));
        return 0;
    }

    private static string ReadKeyFile(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new InvalidOperationException($"cannot read the signing key file {path}: {e.Message}"); }
    }
}
