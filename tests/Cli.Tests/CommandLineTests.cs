using System.CommandLine;
using Microsoft.Extensions.Logging.Abstractions;

namespace Checkpointing.Cli.Tests;

/// <summary>The command line as System.CommandLine and Spectre.Console give it: help, suggestions, completions, terminal output.</summary>
public sealed class CommandLineTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-cmdline-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static RootCommand Root(string tool) =>
        CliApp.Root(CliRunner.Named(tool).Tool, new CliContext(TextWriter.Null, TextWriter.Null, NullLoggerFactory.Instance, interactive: false));

    /// <summary>Every command of every tool's tree, as the tool and the words that name it ("ckpt", "run create").</summary>
    public static TheoryData<string, string> CommandPaths()
    {
        var data = new TheoryData<string, string>();
        foreach (var tool in new[] { "ckpt", "ckpt-lab", "ckpt-bench" })
        {
            var pending = new Stack<(Command Command, string Path)>(Root(tool).Subcommands.Select(c => (c, c.Name)));
            while (pending.Count > 0)
            {
                var (command, path) = pending.Pop();
                data.Add(tool, path);
                foreach (var sub in command.Subcommands) pending.Push((sub, $"{path} {sub.Name}"));
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(CommandPaths))]
    public async Task Every_command_answers_help_with_exit_0_naming_every_option_it_accepts(string tool, string path)
    {
        var words = path.Split(' ');
        var result = await CliRunner.Named(tool).InProcess([.. words, "--help"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("", result.Error);
        Assert.Contains($"{tool} {path}", result.Out, StringComparison.Ordinal);
        var command = words.Aggregate((Command)Root(tool), (c, word) => c.Subcommands.Single(s => s.Name == word));
        foreach (var option in command.Options.Where(o => !o.Hidden)) Assert.Contains(option.Name, result.Out, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ckpt", "ls inspect verify compact convert run history token", "")]
    [InlineData("ckpt-lab", "demo job agent chaos", ", 3 simulated crash (ckpt-lab demo --stop-at)")]
    [InlineData("ckpt-bench", "io commits", "")]
    public async Task Help_of_the_root_lists_every_command_and_the_exit_codes(string tool, string commands, string extraExitCodes)
    {
        foreach (var help in new[] { await CliRunner.Named(tool).InProcess("--help"), await CliRunner.Named(tool).InProcess() })
        {
            Assert.Equal(0, help.ExitCode);
            foreach (var command in commands.Split(' ')) Assert.Contains($"  {command}", help.Out, StringComparison.Ordinal);
            Assert.Contains($"exit codes: 0 ok, 1 verification failed or error, 2 usage{extraExitCodes}\n", help.Out.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_user_facing_tool_carries_no_lab_or_benchmark_command()
    {
        var commands = Root("ckpt").Subcommands.Select(c => c.Name).ToHashSet();

        foreach (var lab in new[] { "demo", "job", "agent", "chaos", "bench" }) Assert.DoesNotContain(lab, commands);
        Assert.DoesNotContain(typeof(CliApp).Assembly.GetReferencedAssemblies(), name => name.Name is "ckpt-lab" or "ckpt-bench" or "Checkpointing.Processes");
    }

    [Theory]
    [InlineData("ckpt-lab", new[] { "dmeo" }, "unknown command or argument 'dmeo'; did you mean 'demo'?")]
    [InlineData("ckpt-lab", new[] { "demo", "--dir", "x", "--widht", "3" }, "unknown option '--widht'; did you mean '--width'?")]
    [InlineData("ckpt", new[] { "run", "shwo", "acme/r1" }, "unknown command or argument 'shwo'; did you mean 'show'?")]
    [InlineData("ckpt", new[] { "verfy", "x" }, "unknown command or argument 'verfy'; did you mean 'verify'?")]
    public async Task A_mistyped_word_is_a_one_line_usage_error_with_the_library_suggestion(string tool, string[] args, string message)
    {
        var result = await CliRunner.Named(tool).InProcess(args);

        Assert.Equal(CliApp.UsageExitCode, result.ExitCode);
        Assert.Equal("", result.Out);
        Assert.Single(result.Error.Trim().Split('\n'));
        Assert.Contains(message, result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chaos_refuses_an_unknown_fault_kind_before_it_builds_anything()
    {
        var result = await CliRunner.Lab.InProcess("chaos", "--faults", "partition,meteor", "--json");

        Assert.Equal(CliApp.UsageExitCode, result.ExitCode);
        Assert.StartsWith("--faults takes silo_kill, silo_term, partition, netem, azurite_restart, agent_kill", (string)result.Json["error"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_command_without_its_subcommand_names_them()
    {
        var result = await CliRunner.Ckpt.InProcess("run");

        Assert.Equal(CliApp.UsageExitCode, result.ExitCode);
        Assert.StartsWith("ckpt: ckpt run needs a subcommand: ", result.Error.Trim(), StringComparison.Ordinal);
        Assert.EndsWith("(ckpt run --help shows the usage)", result.Error.Trim(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ckpt", "ckpt ver", "verify")]
    [InlineData("ckpt", "ckpt run ", "checkpoint-now")]
    [InlineData("ckpt-bench", "ckpt-bench io --device ", "cuda")]
    [InlineData("ckpt-lab", "ckpt-lab demo --fr", "--freeze")]
    public async Task The_suggest_directive_completes_commands_options_and_choices(string tool, string line, string expected)
    {
        var result = await CliRunner.Named(tool).InProcess($"[suggest:{line.Length}]", line);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains(expected, result.Out.Split('\n', StringSplitOptions.TrimEntries));
    }

    [Fact]
    public async Task An_at_sign_is_a_path_not_a_response_file()
    {
        var result = await CliRunner.Ckpt.InProcess("inspect", "@" + Path.Combine(_dir, "nothing"), "--json");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("@", (string)result.Json["error"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task On_terminals_tables_are_drawn_with_borders_and_progress_in_place_and_plain_otherwise()
    {
        var dir = Path.Combine(_dir, "run");
        Assert.Equal(0, (await CliRunner.Lab.InProcess("demo", "--dir", dir, "--iters", "4", "--period", "2", "--json")).ExitCode);

        var (terminalLs, plainLs) = (await OnTerminals("ls", dir), await CliRunner.Ckpt.InProcess("ls", dir));
        var (terminalVerify, plainVerify) = (await OnTerminals("verify", Path.Combine(dir, "model_final")), await CliRunner.Ckpt.InProcess("verify", Path.Combine(dir, "model_final")));

        Assert.Equal(0, terminalLs.ExitCode);
        Assert.Contains("╭", terminalLs.Out, StringComparison.Ordinal); // Spectre's rounded border
        Assert.Contains("│ * │ model_final", terminalLs.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("│", plainLs.Out, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^\* model_final +\d+ ", plainLs.Out);

        Assert.Equal(0, terminalVerify.ExitCode);
        Assert.Contains("\u001b[", terminalVerify.Error, StringComparison.Ordinal); // drawn with cursor control
        Assert.Contains("100%", terminalVerify.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[", plainVerify.Error, StringComparison.Ordinal);
        Assert.Contains("progress ", plainVerify.Error, StringComparison.Ordinal);
        Assert.StartsWith("OK: model_final", terminalVerify.Out, StringComparison.Ordinal);
    }

    private static async Task<CliResult> OnTerminals(params string[] args)
    {
        var (output, error) = (new StringWriter(), new StringWriter());
        var code = await CliApp.RunAsync(CliApp.Ckpt, args, output, error, interactive: true, tables: true);
        return new CliResult(code, output.ToString(), error.ToString());
    }
}
