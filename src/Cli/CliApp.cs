using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Cli;

/// <summary>
/// Runs a command-line tool on System.CommandLine: help, typo suggestions, completions; failures as one
/// line. <c>ckpt</c> is <see cref="Ckpt"/>; the lab and benchmark tools run through the same code.
/// </summary>
public static class CliApp
{
    /// <summary>The exit code of a command line the user must fix (a usage error); 1 is any other failure (<see cref="CliFailure.FailureExitCode"/>).</summary>
    public const int UsageExitCode = 2;

    /// <summary>The user-facing tool: catalogs, interop, runs on a cluster, credentials.</summary>
    public static readonly CliTool Ckpt = new("ckpt", "ckpt — checkpoints for TorchSharp training (detectron2/fvcore semantics)", context =>
    [
        CatalogCommands.Ls(context),
        CatalogCommands.Compact(context),
        CatalogCommands.Inspect(context),
        CatalogCommands.Verify(context),
        InteropCommands.Convert(context),
        RunCommands.Run(context),
        RunCommands.History(context),
        RunCommands.Token(context),
        HolderCommand.Build(context),
    ]);

    /// <summary>The exit codes and failure format that every tool's root help ends with.</summary>
    public static string ExitCodes(CliTool tool) => $"""
        exit codes: 0 ok, 1 verification failed or error, 2 usage{tool.ExtraExitCodes}
        a failure is one line on stderr ("{tool.Name}: ..."); with --json{(tool.EventStreamCommand is { } events ? $" (and from `{tool.Name} {events}`)" : "")} it is one
        JSON object on stdout instead: {"{"}"error": "...", "kind": "disk_full"{"}"} (kinds: usage, bad_input,
        not_found, disk_full, read_only, permission_denied, io, storage_unavailable, network,
        silo_unreachable, timeout, refused, cancelled, unsupported, failed, internal); --verbose logs
        the details. Completions: the [suggest] directive (dotnet-suggest), see the README.
        """;

    // Arguments are taken literally: "@file" is a path, never a response file to expand.
    private static readonly ParserConfiguration Parsing = new() { ResponseFileTokenReplacer = null };

    /// <summary>Runs <c>ckpt</c> with <paramref name="args"/>, as <see cref="RunAsync(CliTool, string[], TextWriter, TextWriter)"/> does; returns the exit code.</summary>
    public static Task<int> RunAsync(string[] args, TextWriter output, TextWriter error) => RunAsync(Ckpt, args, output, error);

    /// <summary>
    /// Runs <paramref name="tool"/> with <paramref name="args"/>; returns the exit code. A failure is not thrown: it is reported
    /// (one line on <paramref name="error"/>, or one JSON object on <paramref name="output"/> with --json) and its exit code returned.
    /// Progress is drawn in place (stderr a terminal) and tables with borders (stdout a terminal) only when <paramref name="error"/>
    /// is the process's stderr.
    /// </summary>
    public static Task<int> RunAsync(CliTool tool, string[] args, TextWriter output, TextWriter error)
    {
        var console = ReferenceEquals(error, Console.Error);
        return RunAsync(tool, args, output, error, interactive: console && !Console.IsErrorRedirected, tables: console && !Console.IsOutputRedirected);
    }

    /// <summary>Runs a command line; <paramref name="interactive"/> and <paramref name="tables"/> say whether stderr and stdout are terminals.</summary>
    public static async Task<int> RunAsync(CliTool tool, string[] args, TextWriter output, TextWriter error, bool interactive, bool tables)
    {
        var verbose = args.Contains("--verbose");
        using var loggers = LoggerFactory.Create(b => b
            .SetMinimumLevel(verbose ? LogLevel.Information : LogLevel.Warning)
            .AddSimpleConsole(o => o.SingleLine = true)
            .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
        var context = new CliContext(output, error, loggers, interactive, tables);
        try
        {
            var parse = Root(tool, context).Parse(args is [] or ["help"] ? ["--help"] : args, Parsing);
            // --help (and directives like [suggest]) answer even a command line with errors: its action is not the error action.
            if (parse.Action is ParseErrorAction) throw new UsageException(UsageErrors.Describe(parse), UsageErrors.CommandPath(parse));
            return await parse.InvokeAsync(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e)
        {
            // The last resort as well: whatever a command ends with becomes one line, never a stack trace.
            var failure = CliFailure.From(e);
            if (verbose) context.Logger(tool.Name).LogError(e, "{Tool} {Command} failed ({Kind})", tool.Name, args.FirstOrDefault(), failure.Kind);
            Report(tool, failure, args, output, error);
            return failure.ExitCode;
        }
    }

    /// <summary>Every command of <paramref name="tool"/>, with its options; the actions write through <paramref name="context"/>.</summary>
    public static RootCommand Root(CliTool tool, CliContext context)
    {
        var root = new RootCommand(tool.Description) { HelpName = tool.Name }; // not the host's name (dotnet, testhost)
        root.Options.Add(new Option<bool>("--verbose") { Description = "log the details (to stderr)", Recursive = true });
        root.With([.. tool.Commands(context)]);
        var help = root.Options.OfType<HelpOption>().Single();
        help.Action = new HelpWithExitCodes((HelpAction)help.Action!, ExitCodes(tool));
        return root;
    }

    /// <summary>The generated help, and under the root's the exit codes and the failure format scripts rely on.</summary>
    private sealed class HelpWithExitCodes(HelpAction help, string exitCodes) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            var code = help.Invoke(parseResult);
            if (parseResult.CommandResult.Command is RootCommand) parseResult.InvocationConfiguration.Output.WriteLine(exitCodes);
            return code;
        }
    }

    /// <summary>
    /// With --json (and always for the tool's event-stream command, e.g. <c>ckpt-lab agent</c>, whose stdout is a
    /// stream of JSON events) the failure is one JSON object on stdout and nothing goes to stderr; otherwise one line on stderr.
    /// </summary>
    private static void Report(CliTool tool, CliFailure failure, string[] args, TextWriter output, TextWriter error)
    {
        var agent = tool.EventStreamCommand is { } events && args.FirstOrDefault() == events;
        if (!agent && !args.Contains("--json"))
        {
            var hint = failure.Kind == "usage" ? $" ({failure.HelpCommand ?? tool.Name} --help shows the usage)" : "";
            error.WriteLine($"{tool.Name}: {failure.Message}{hint}");
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
}
