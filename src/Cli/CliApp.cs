using Checkpointing.Formats;
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
                    [--width 64] [--shards 1] [--seed 1] [--json] [--verbose]
              train a small model with periodic checkpoints into DIR, resuming from its last
              checkpoint; --stop-at N ends abruptly at iteration N (exit code 3), like a crash
          ckpt ls DIR [--json]          list the checkpoints in DIR; * marks last_checkpoint
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
              cluster options: --silo HOST:PORT (default 127.0.0.1:30000) [--cluster-id ID]
                               --token TOKEN (or env CKPT_TOKEN)
          ckpt token --key BASE64 --tenant T [--hours 24]   issue a tenant credential ('*' = operator)
          ckpt agent --run T/R --rank R --world-size N --epoch E (--storage CONN | --store-folder DIR)
                     [--width 64] [--seed 1] [--hold-at N]
              one training rank in cluster mode (what `ckpt job` launches); JSON events on stdout;
              --hold-at N stops before iteration N until the launcher kills it

        exit codes: 0 ok, 1 verification failed or error, 2 usage, 3 simulated crash
        """;

    private static readonly HashSet<string> Flags = new(StringComparer.Ordinal) { "json", "verbose", "help" };

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        var parsed = new CliArguments(args.Skip(1), Flags);
        var verbose = parsed.Flag("verbose");
        using var loggers = LoggerFactory.Create(b => b
            .SetMinimumLevel(verbose ? LogLevel.Information : LogLevel.Warning)
            .AddSimpleConsole(o => o.SingleLine = true)
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
        var context = new CliContext(output, error, loggers, interactive: ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected);
        try
        {
            if (parsed.Flag("help")) return Help(output);
            return args.FirstOrDefault() switch
            {
                "demo" => await DemoCommand.RunAsync(parsed, context),
                "ls" => await CatalogCommands.LsAsync(parsed, context),
                "inspect" => await CatalogCommands.InspectAsync(parsed, context),
                "verify" => await CatalogCommands.VerifyAsync(parsed, context),
                "convert" => await InteropCommands.ConvertAsync(parsed, context),
                "run" => await RunCommands.RunAsync(parsed, context),
                "token" => RunCommands.Token(parsed, context),
                "agent" => await AgentCommand.RunAsync(parsed, context),
                "job" => await JobCommand.RunAsync(parsed, context),
                null or "help" or "-h" => Help(output),
                var other => throw new UsageException($"unknown command '{other}'"),
            };
        }
        catch (UsageException e)
        {
            error.WriteLine($"ckpt: {e.Message}");
            error.WriteLine(Usage);
            return UsageExitCode;
        }
        catch (Exception e) when (e is CheckpointFormatException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException or ArgumentException
            or Abstractions.Runs.RunRefusedException or TimeoutException or InvalidOperationException or NotSupportedException)
        {
            error.WriteLine($"ckpt: {e.Message}");
            return 1;
        }
    }

    private static int Help(TextWriter output)
    {
        output.WriteLine(Usage);
        return 0;
    }
}

