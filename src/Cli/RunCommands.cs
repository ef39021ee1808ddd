using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.TrainerAgent;

namespace Checkpointing.Cli;

/// <summary><c>ckpt run create|show|ls|policy|delete|attempt|checkpoint-now</c> and <c>ckpt token</c>: the control plane from a terminal.</summary>
public static class RunCommands
{
    /// <summary>
    /// <c>ckpt run create|show|policy|ls|delete|attempt|checkpoint-now|recover</c>: each a call to the run's grain (the tenant's
    /// grain for <c>ls</c>) over the cluster options, printing the result as text or, with --json, one JSON object.
    /// </summary>
    public static Command Run(CliContext context) => new Command("run", "a training run's grain: create, show, list, change its policy, delete, start an attempt, request a checkpoint, recover its catalog").With(
        RunVerb("create", "create a run with a periodic policy", context, takesPolicy: true,
            (connection, id, policy) => connection.Run(id).Create(policy!(new PeriodicPolicy(20)))),
        RunVerb("show", "the run: policy, catalog, pending checkpoints", context, takesPolicy: false, (connection, id, _) => connection.Run(id).Get()),
        RunVerb("policy", "change the run's policy (options not given keep their value)", context, takesPolicy: true,
            async (connection, id, policy) => await connection.Run(id).SetPolicy(policy!((await connection.Run(id).Get()).Policy))),
        RunList(context),
        RunAction("delete", "delete the run, its catalog and its checkpoints", context, null,
            async (connection, id, _) => { await connection.Run(id).Delete(); return (new JsonObject { ["deleted"] = id.Key }, $"deleted {id}"); }),
        RunAction("attempt", "start a new attempt (epoch) of the run: fences the previous one", context, null,
            async (connection, id, _) => { var epoch = await connection.Run(id).StartAttempt(); return (new JsonObject { ["run"] = id.Key, ["epoch"] = epoch }, epoch.ToString(CultureInfo.InvariantCulture)); }),
        CheckpointNow(context),
        RunAction("recover", "operator: rebuild a run's catalog and last tag from the committed checkpoints in the store (after its state was lost), adopting only those that verify",
            context, null, async (connection, id, _) =>
            {
                var report = await connection.Run(id).RecoverCatalog(new PeriodicPolicy(20));
                var refused = report.Refused.Count == 0 ? "" : $"; refused {string.Join("; ", report.Refused.Select(r => $"{r.Name}: {r.Reason}"))}";
                return (RunJson.Of(id, report), $"adopted {report.Adopted.Count} checkpoint(s){(report.Adopted.Count > 0 ? $" ({string.Join(", ", report.Adopted)})" : "")}{refused}; last = {report.LastCheckpoint ?? "none"}");
            }));

    /// <summary>The options of a run command: TENANT/RUN, --json and the cluster's.</summary>
    private sealed class RunCommandOptions(Command command)
    {
        public Argument<RunId> Run { get; } = CliOptions.RunArgument("the run");
        public Option<bool> Json { get; } = CliOptions.Json();
        public ClusterOptions Cluster { get; private set; } = null!;

        public RunCommandOptions Declare()
        {
            command.With(Run, Json);
            Cluster = ClusterOptions.AddTo(command);
            return this;
        }

        public RunId Id(ParseResult parse) => parse.GetValue(Run)!;
    }

    /// <summary>A run command that prints the run (as `run show` does); one that takes policy options gets them as a change to a policy.</summary>
    private static Command RunVerb(string name, string description, CliContext context, bool takesPolicy,
        Func<ClusterConnection, RunId, Func<PeriodicPolicy, PeriodicPolicy>?, Task<RunView>> call)
    {
        var command = new Command(name, description);
        var options = new RunCommandOptions(command).Declare();
        var policy = takesPolicy ? PolicyOptions.AddTo(command) : null;
        command.SetAction(async parse =>
        {
            var id = options.Id(parse);
            Func<PeriodicPolicy, PeriodicPolicy>? change = policy is null ? null : current => policy.Read(parse, current);
            await using var connection = await options.Cluster.ConnectAsync(parse);
            Print(context, parse.GetValue(options.Json), await connection.RetryWhileFailingOverAsync(() => call(connection, id, change)));
            return 0;
        });
        return command;
    }

    /// <summary>A run command that prints one JSON object or one line.</summary>
    private static Command RunAction(string name, string description, CliContext context, Option<string?>? extra,
        Func<ClusterConnection, RunId, string?, Task<(JsonObject Json, string Line)>> call)
    {
        var command = new Command(name, description);
        var options = new RunCommandOptions(command).Declare();
        if (extra is not null) command.With(extra);
        command.SetAction(async parse =>
        {
            var id = options.Id(parse);
            await using var connection = await options.Cluster.ConnectAsync(parse);
            var (json, line) = await connection.RetryWhileFailingOverAsync(() => call(connection, id, extra is null ? null : parse.GetValue(extra)));
            context.Out.WriteLine(parse.GetValue(options.Json) ? json.ToJsonString() : line);
            return 0;
        });
        return command;
    }

    private static Command CheckpointNow(CliContext context)
    {
        var reason = CliOptions.Text("--reason", "why (kept in the run's log)", "TEXT");
        return RunAction("checkpoint-now", "ask the run's ranks to save at their next step", context, reason, async (connection, id, given) =>
        {
            var why = given ?? "requested from the CLI";
            await connection.Run(id).RequestCheckpointNow(why);
            return (new JsonObject { ["run"] = id.Key, ["requested"] = why }, $"checkpoint requested for {id}");
        });
    }

    private static Command RunList(CliContext context)
    {
        var tenant = CliOptions.Positional("TENANT", "the tenant");
        var json = CliOptions.Json();
        var offset = CliOptions.Integer("--offset", "skip this many runs (in name order)", 0, min: 0);
        var limit = CliOptions.Integer("--limit", $"list at most this many runs (1 to {RunPage.MaxLimit})", 50, min: 1);
        var command = new Command("ls", "the tenant's runs: health, last checkpoint and its age, retained bytes, commits in the last hour").With(tenant, json, offset, limit);
        var cluster = ClusterOptions.AddTo(command);
        command.SetAction(async parse =>
        {
            var name = parse.GetValue(tenant)!;
            if (parse.GetValue(limit) > RunPage.MaxLimit) throw new UsageException($"--limit is at most {RunPage.MaxLimit}", "ckpt run ls");
            await using var connection = await cluster.ConnectAsync(parse);
            var page = await connection.RetryWhileFailingOverAsync(() => connection.Tenant(name).GetRunPage((int)parse.GetValue(offset), (int)parse.GetValue(limit)));
            if (parse.GetValue(json))
            {
                context.Out.WriteLine(RunJson.Of(page).ToJsonString());
                return 0;
            }
            var now = DateTimeOffset.UtcNow;
            var table = new CliTable(new("RUN", 32), new("STATE", 13), new("LAST CHECKPOINT", 20), new("AGE", 8, Right: true), new("RETAINED", 12, Right: true), new("COMMITS/H", 9, Right: true));
            foreach (var run in page.Runs)
            {
                table.Add($"{name}/{run.Run}", RunJson.Name(run.Health), run.LastCheckpoint ?? "-", run.LastCommittedUtc is { } at ? Age(now - at) : "-",
                    CatalogCommands.Bytes(run.RetainedBytes), run.CommitsLastHour.ToString(CultureInfo.InvariantCulture));
            }
            table.Write(context);
            if (page.Offset + page.Runs.Count < page.TotalRuns)
                context.Out.WriteLine($"runs {page.Offset + 1}-{page.Offset + page.Runs.Count} of {page.TotalRuns}: --offset {page.Offset + page.Runs.Count} lists the next");
            return 0;
        });
        return command;
    }

    /// <summary>A duration for people: "42s", "7m", "3h", "2d".</summary>
    internal static string Age(TimeSpan age) => age.TotalSeconds switch
    {
        < 0 => "0s",
        < 90 => $"{age.TotalSeconds:0}s",
        < 90 * 60 => $"{age.TotalMinutes:0}m",
        < 36 * 3600 => $"{age.TotalHours:0}h",
        _ => $"{age.TotalDays:0}d",
    };

    /// <summary><c>ckpt history TENANT/RUN</c>: the run grain's checkpoint history.</summary>
    public static Command History(CliContext context)
    {
        var command = new Command("history", "the run's checkpoint history: saves (duration, bytes, MB/s, per-rank seconds, stall) and loads");
        var options = new RunCommandOptions(command).Declare();
        command.SetAction(async parse =>
        {
            var id = options.Id(parse);
            await using var connection = await options.Cluster.ConnectAsync(parse);
            var history = await connection.RetryWhileFailingOverAsync(() => connection.Run(id).GetHistory());
            if (parse.GetValue(options.Json))
            {
                context.Out.WriteLine(RunJson.Of(id, history).ToJsonString());
                return 0;
            }
            var table = new CliTable(new("AT (UTC)", 19), new("KIND", 5), new("CHECKPOINT", 24), new("BYTES", 14, Right: true), new("SECONDS", 9, Right: true), new("MB/S", 9, Right: true), new("STALL S", 8, Right: true));
            foreach (var h in history)
            {
                var rate = h.Seconds > 0 ? (h.Bytes / h.Seconds / 1e6).ToString("F1", CultureInfo.InvariantCulture) : "-";
                var stall = h.StallSeconds?.ToString("F3", CultureInfo.InvariantCulture) ?? "-";
                var kind = h.Kind == HistoryEntry.Load ? $"load (rank {h.Rank})" : h.Kind;
                table.Add($"{h.AtUtc.UtcDateTime:yyyy-MM-dd HH:mm:ss}", kind, h.Name, CatalogCommands.Bytes(h.Bytes), h.Seconds.ToString("F3", CultureInfo.InvariantCulture), rate, stall);
            }
            table.Write(context);
            // Why each fallback did not use the memory tier: too long for a column.
            foreach (var fallback in history.Where(h => h.Kind == HistoryEntry.Fallback)) context.Out.WriteLine($"fallback from {fallback.Name} (attempt {fallback.Epoch}): {fallback.Detail}");
            return 0;
        });
        return command;
    }

    /// <summary>--period, --max-iter, --max-to-keep, --prefix: a run's policy, each falling back to a current value.</summary>
    private sealed class PolicyOptions
    {
        private readonly Option<long?> _period = CliOptions.OptionalInteger("--period", "save every P iterations (create: 20)", min: 1);
        private readonly Option<long?> _maxIter = CliOptions.OptionalInteger("--max-iter", "the last iteration: model_final is saved there", min: 1);
        private readonly Option<long?> _maxToKeep = CliOptions.OptionalInteger("--max-to-keep", "keep only the K newest periodic checkpoints", min: 1);
        private readonly Option<string?> _prefix = CliOptions.Text("--prefix", "checkpoint name prefix (create: model)", "NAME");
        private readonly Option<long?> _memoryPeriod = CliOptions.OptionalInteger("--memory-period",
            "take an in-memory checkpoint every M iterations on the ranks' holders (docs/memory-tier.md); 0: no memory tier", min: 0);

        public static PolicyOptions AddTo(Command command)
        {
            var options = new PolicyOptions();
            command.With(options._period, options._maxIter, options._maxToKeep, options._prefix, options._memoryPeriod);
            return options;
        }

        public PeriodicPolicy Read(ParseResult parse, PeriodicPolicy current) => new PeriodicPolicy(
            (int?)parse.GetValue(_period) ?? current.Period,
            parse.GetValue(_maxIter) ?? current.MaxIter,
            (int?)parse.GetValue(_maxToKeep) ?? current.MaxToKeep,
            parse.GetValue(_prefix) ?? current.FilePrefix,
            parse.GetValue(_memoryPeriod) is { } memory ? (memory == 0 ? null : (int)memory) : current.MemoryPeriod).Validated();
    }

    /// <summary>Prints a run to the context's stdout as <see cref="Print(TextWriter, bool, RunView, bool)"/> does, with borders when <see cref="CliContext.Tables"/>.</summary>
    public static void Print(CliContext context, bool json, RunView view) => Print(context.Out, json, view, context.Tables);

    /// <summary>
    /// Prints a run: its policy and attempt, its catalog as a table (* marks the last checkpoint), and its pending checkpoints with
    /// how many ranks reported; or, with <paramref name="json"/>, the one JSON object of <see cref="RunJson.Of(RunView)"/>.
    /// </summary>
    /// <param name="output">Where the run is printed.</param>
    /// <param name="json">Print one JSON object instead of text.</param>
    /// <param name="view">The run, as its grain reported it.</param>
    /// <param name="terminal">The writer is a terminal: the catalog is drawn as a bordered table.</param>
    public static void Print(TextWriter output, bool json, RunView view, bool terminal = false)
    {
        if (json)
        {
            output.WriteLine(RunJson.Of(view).ToJsonString());
            return;
        }
        var now = DateTimeOffset.UtcNow;
        output.WriteLine($"run {view.Id}  policy period={view.Policy.Period} max_iter={view.Policy.MaxIter?.ToString(CultureInfo.InvariantCulture) ?? "-"} max_to_keep={view.Policy.MaxToKeep?.ToString(CultureInfo.InvariantCulture) ?? "-"} prefix={view.Policy.FilePrefix}{(view.Policy.MemoryPeriod is { } memoryPeriod ? $" memory_period={memoryPeriod}" : "")}  attempt {view.Epoch}");
        if (view.Health is { } health)
            output.WriteLine($"health: {RunJson.Name(health.State)} ({health.Detail}){(health.Iteration is { } iteration ? $"; iteration {iteration}" : "")}{(health.LastHeartbeatUtc is { } beat ? $"; last heartbeat {Age(now - beat)} ago" : "")}");
        if (view.MemoryCheckpoint is { } memory)
            output.WriteLine($"memory tier: {memory.Name} (iteration {memory.Iteration}, attempt {memory.Epoch}){(memory.Unusable ? " UNUSABLE" : "")}, committed {Age(now - memory.CommittedUtc)} ago, {memory.HeldBytes} bytes held: "
                + string.Join("; ", memory.Ranks.Select(r => $"rank {r.Rank} on {string.Join(", ", r.Holders.Select(h => h.Host))}")));
        var table = new CliTable(new("", 1), new("NAME", 24), new("ITERATION", 10, Right: true), new("BYTES", 14, Right: true), new("RANKS", 5, Right: true), new("COMMITTED (UTC)", 20));
        foreach (var c in view.Catalog)
        {
            table.Add(c.Name == view.LastCheckpoint ? "*" : " ", c.Name, c.Iteration?.ToString(CultureInfo.InvariantCulture) ?? "-", CatalogCommands.Bytes(c.Bytes),
                c.WorldSize.ToString(CultureInfo.InvariantCulture), $"{c.CommittedUtc.UtcDateTime:yyyy-MM-dd HH:mm:ss}");
        }
        table.Write(output, terminal);
        foreach (var p in view.Pending)
        {
            var missing = p.MissingRanks is { Count: > 0 } ranks ? $"; waiting for rank{(ranks.Count > 1 ? "s" : "")} {string.Join(", ", ranks.Take(16))}{(ranks.Count > 16 ? ", …" : "")}" : "";
            output.WriteLine($"  (pending) {p.Name}: {p.RanksReported} of {p.WorldSize} ranks reported{missing}; begun {Age(now - p.StartedUtc)} ago");
        }
        output.WriteLine(view.LastCheckpoint is null ? "no checkpoint yet" : $"* = last checkpoint ({view.LastCheckpoint})");
    }

    /// <summary>The environment variable <c>ckpt token</c> reads the silo's signing key from (base64, at least 32 bytes) unless --key-file is given.</summary>
    public const string SigningKeyVariable = "CKPT_SIGNING_KEY";

    /// <summary>
    /// <c>ckpt token --tenant T [--hours 24] [--key-file FILE]</c>: the operator issues a tenant credential
    /// offline, with the silo's signing key from env CKPT_SIGNING_KEY or a file, never from argv.
    /// </summary>
    public static Command Token(CliContext context)
    {
        var tenant = CliOptions.RequiredText("--tenant", "the tenant ('*' = the operator)", "NAME");
        var hours = CliOptions.Integer("--hours", "hours until the credential expires", 24, min: 1);
        var keyFile = CliOptions.Text("--key-file", $"read the signing key from FILE (else env {SigningKeyVariable})", "FILE");
        // Declared only to refuse it with the reason: a typo suggestion would not say why.
        var key = new Option<string?>("--key") { Hidden = true };
        var command = new Command("token", "issue a tenant credential signed with the silo's Tenancy:SigningKey").With(tenant, hours, keyFile, key);
        command.SetAction(parse =>
        {
            if (parse.GetValue(key) is not null)
                throw new UsageException($"--key is refused: a key on the command line is readable by every user of this machine (ps, /proc/PID/cmdline) and stays in shell history; set env {SigningKeyVariable} or give --key-file FILE", "ckpt token");
            return Issue(parse.GetValue(tenant)!, parse.GetValue(hours), parse.GetValue(keyFile), context);
        });
        return command;
    }

    private static int Issue(string tenant, long hours, string? keyFile, CliContext context)
    {
        var (key, source) = keyFile is not null ? (ReadKeyFile(keyFile), keyFile)
            : (Environment.GetEnvironmentVariable(SigningKeyVariable), $"env {SigningKeyVariable}");
        if (string.IsNullOrWhiteSpace(key)) throw new UsageException($"token needs the silo's Tenancy:SigningKey (base64): set env {SigningKeyVariable} or give --key-file FILE", "ckpt token");
        byte[] keyBytes;
        try { keyBytes = Convert.FromBase64String(key.Trim()); }
        catch (FormatException) { throw new UsageException($"the signing key in {source} is not base64", "ckpt token"); }
        if (keyBytes.Length < 32) throw new UsageException($"the signing key in {source} has {keyBytes.Length} bytes; the silo needs at least 32", "ckpt token");
        context.Out.WriteLine(TenantTokens.Issue(keyBytes, tenant, DateTimeOffset.UtcNow.AddHours(hours)));
        return 0;
    }

    private static string ReadKeyFile(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new InvalidOperationException($"cannot read the signing key file {path}: {e.Message}"); }
    }
}
