using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Checkpointing.Cli.Bench;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Cli;

/// <summary>Where a command writes and how it logs; tests run commands in-process with their own writers.</summary>
public sealed class CliContext(TextWriter output, TextWriter error, ILoggerFactory loggers, bool interactive)
{
    public TextWriter Out { get; } = output;
    public TextWriter Error { get; } = error;
    public bool Interactive { get; } = interactive;
    public ILogger Logger(string category) => loggers.CreateLogger(category);
}

public static class CliApp
{
    public const int UsageExitCode = 2;

    public const string Usage = """
        ckpt — checkpoints for TorchSharp training (detectron2/fvcore semantics)

        usage:
          ckpt demo --dir DIR [--iters 200] [--period 20] [--max-to-keep K] [--stop-at N]
                    [--width 64] [--depth 1] [--shards 1] [--seed 1] [--leftover-min-age 600]
                    [--freeze F] [--incremental] [--json] [--verbose]
              train a small model with periodic checkpoints into DIR, resuming from its last
              checkpoint; --stop-at N ends abruptly at iteration N (exit code 3), like a crash;
              leftovers of killed saves older than --leftover-min-age seconds are collected;
              --freeze F freezes the first F of the parameters and saves incrementally (unchanged
              tensors are not written again; --incremental alone does that without freezing)
          ckpt ls DIR [--json]          list the checkpoints in DIR (LOGICAL tensor bytes, bytes WRITTEN by
                                        each save); * marks last_checkpoint
          ckpt compact PATH [--json]    rewrite an incremental checkpoint as self-contained (verified first)
          ckpt inspect PATH [--json]    tensors (key, dtype, shape, bytes) and non-tensor values (also .pth/.pkl/.pyth/.safetensors)
          ckpt verify PATH [--json]     check every shard's length, header and checksum (exit 1 if not sound)
          ckpt convert SRC DST [--rename c2] [--match-to TARGET] [--json]
              convert SRC (.pth/.pt, .pkl, .pyth, .safetensors or a native checkpoint folder) to DST
              (.pth or .safetensors (model tensors and __metadata__ only) by extension, else a native
              folder); --rename c2 applies detectron2's Caffe2 renames;
              --match-to aligns SRC's model keys to TARGET's keys and shapes and prints the matches

        cluster mode (a silo; see README):
          ckpt job [--agents 2] [--iters 120] [--period 20] [--max-to-keep 3] [--kill-at N] [--json]
              the main job on this machine: Azurite, a silo, N agents checkpointing into blobs;
              one agent is SIGKILLed at iteration N, the job restarts and resumes, then lists the run
          ckpt run create|show|policy|delete|attempt|checkpoint-now TENANT/RUN [--period P]
                   [--max-iter M] [--max-to-keep K] [--prefix model] [--reason R] [--json]
          ckpt run ls TENANT [--json]
          ckpt history TENANT/RUN [--json]
              the run's checkpoint history: saves (duration, bytes, MB/s, per-rank seconds, stall) and loads
              cluster options: --silo HOST:PORT (default 127.0.0.1:30000) [--cluster-id ID] [--connect-timeout 20]
                               env CKPT_TOKEN=TOKEN (or --token TOKEN, visible to other users)
          ckpt token --tenant T [--hours 24] [--key-file FILE]
              issue a tenant credential ('*' = operator) signed with the silo's Tenancy:SigningKey,
              read from env CKPT_SIGNING_KEY or --key-file FILE (never argv: --key is refused)
          ckpt agent --run T/R --rank R --world-size N --epoch E (env CKPT_STORAGE=CONN | --store-folder DIR)
                     [--width 64] [--seed 1] [--hold-at N]
              one training rank in cluster mode (what `ckpt job` launches); JSON events on stdout;
              --hold-at N stops before iteration N until the launcher kills it
          ckpt bench commits [--runs 64] [--ranks 2] [--commits 3] [--tensors 4] [--grain-state blob|memory]
                             [--store blob|memory] [--silos 2] [--rate R] [--commit-timeout 600] [--max-seconds 600] [--json]
              load on the control plane: Azurite (if any storage is blob) and S silos on this machine;
              N runs x W ranks each save C checkpoints concurrently through the agents' client path;
              prints commits/s, commit latency p50/p90/p99/max, failures by type, Azurite and silo CPU
              seconds and grain-state bytes written during the timed window; exit 1 on any failure
              (a wrong catalog and a checkpoint unfinished after --max-seconds count as failures)
          ckpt bench io [--size-mib 1024] [--repeat 3] [--tensors 64] [--shards 1] [--rows a,b,...] [--device cpu|cuda] [--json]
              the data plane against this machine's limits: each row times our save/load/async save
              and a reference on the same bytes (FileStream+fsync, dd, torch.save/torch.load via
              /usr/bin/python3, memcpy, raw Azure SDK on a local Azurite), interleaved within every
              repetition; prints median and min, ratios, and the peak RSS of our save and load;
              incremental_* rows: incremental against full saves, all tensors changed or 90% frozen

        exit codes: 0 ok, 1 verification failed or error, 2 usage, 3 simulated crash
        a failure is one line on stderr ("ckpt: ..."); with --json (and from `ckpt agent`) it is one
        JSON object on stdout instead: {"error": "...", "kind": "disk_full"} (kinds: usage, bad_input,
        not_found, disk_full, read_only, permission_denied, io, storage_unavailable, network,
        silo_unreachable, timeout, refused, cancelled, unsupported, failed, internal); --verbose logs
        the details
        """;

    private static readonly HashSet<string> Flags = new(StringComparer.Ordinal) { "json", "verbose", "help", "incremental" };

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        var command = args.FirstOrDefault();
        var verbose = args.Contains("--verbose");
        using var loggers = LoggerFactory.Create(b => b
            .SetMinimumLevel(verbose ? LogLevel.Information : LogLevel.Warning)
            .AddSimpleConsole(o => o.SingleLine = true)
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
        var context = new CliContext(output, error, loggers, interactive: ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected);
        try
        {
            var parsed = new CliArguments(args.Skip(1), Flags);
            parsed.Flag("verbose");
            if (parsed.Flag("help")) return Help(output);
            return command switch
            {
                "demo" => await DemoCommand.RunAsync(parsed, context),
                "ls" => await CatalogCommands.LsAsync(parsed, context),
                "inspect" => await CatalogCommands.InspectAsync(parsed, context),
                "verify" => await CatalogCommands.VerifyAsync(parsed, context),
                "compact" => await CatalogCommands.CompactAsync(parsed, context),
                "convert" => await InteropCommands.ConvertAsync(parsed, context),
                "run" => await RunCommands.RunAsync(parsed, context),
                "token" => RunCommands.Token(parsed, context),
                "history" => await RunCommands.HistoryAsync(parsed, context),
                "agent" => await AgentCommand.RunAsync(parsed, context),
                "job" => await JobCommand.RunAsync(parsed, context),
                "bench" => parsed.Positionals.FirstOrDefault() == "io" ? await IoBenchCommand.RunAsync(parsed, context) : await CommitBenchCommand.RunAsync(parsed, context),
                null or "help" or "-h" => Help(output),
                var other => throw new UsageException($"unknown command '{other}'"),
            };
        }
        catch (Exception e)
        {
            // The last resort as well: whatever a command ends with becomes one line, never a stack trace.
            var failure = CliFailure.From(e);
            if (verbose) context.Logger("ckpt").LogError(e, "ckpt {Command} failed ({Kind})", command, failure.Kind);
            Report(failure, args, output, error);
            return failure.ExitCode;
        }
    }

    /// <summary>
    /// With --json (and always for <c>ckpt agent</c>, whose stdout is a stream of JSON events) the
    /// failure is one JSON object on stdout and nothing goes to stderr; otherwise one line on stderr.
    /// </summary>
    private static void Report(CliFailure failure, string[] args, TextWriter output, TextWriter error)
    {
        var agent = args.FirstOrDefault() == "agent";
        if (!agent && !args.Contains("--json"))
        {
            var hint = failure.Kind == "usage" ? " (ckpt --help shows the usage)" : "";
            error.WriteLine($"ckpt: {failure.Message}{hint}");
            return;
        }
        var json = new JsonObject();
        if (agent)
        {
            json["event"] = "error";
            if (ValueAfter(args, "--rank") is { } rank && int.TryParse(rank, NumberStyles.None, CultureInfo.InvariantCulture, out var r)) json["rank"] = r;
        }
        json["error"] = failure.Message;
        json["kind"] = failure.Kind;
        output.WriteLine(json.ToJsonString(ReadableJson));
        output.Flush();
    }

    /// <summary>Paths and quotes stay readable in error messages; JSON still escapes what it must.</summary>
    private static readonly JsonSerializerOptions ReadableJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string? ValueAfter(string[] args, string option)
    {
        var i = Array.IndexOf(args, option);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static int Help(TextWriter output)
    {
        output.WriteLine(Usage);
        return 0;
    }
}

