using System.CommandLine;
using Microsoft.Extensions.Logging.Abstractions;

namespace Checkpointing.Cli.Tests;

/// <summary>The command line as System.CommandLine and Spectre.Console give it: help, suggestions, completions, terminal output.</summary>
public sealed class CommandLineTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-cmdline-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Every command of the tree, as the words that name it ("run create").</summary>
    public static TheoryData<string> CommandPaths()
    {
        var data = new TheoryData<string>();
        var root = CliApp.Root(new CliContext(TextWriter.Null, TextWriter.Null, NullLoggerFactory.Instance, interactive: false));
        var pending = new Stack<(Command Command, string Path)>(root.Subcommands.Select(c => (c, c.Name)));
        while (pending.Count > 0)
        {
            var (command, path) = pending.Pop();
            data.Add(path);
            foreach (var sub in command.Subcommands) pending.Push((sub, $"{path} {sub.Name}"));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(CommandPaths))]
    public async Task Every_command_answers_help_with_exit_0_naming_every_option_it_accepts(string path)
    {
        var words = path.Split(' ');
        var result = await CliRunner.InProcess([.. words, "--help"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("", result.Error);
        Assert.Contains($"ckpt {path}", result.Out, StringComparison.Ordinal);
        var root = CliApp.Root(new CliContext(TextWriter.Null, TextWriter.Null, NullLoggerFactory.Instance, interactive: false));
        var command = words.Aggregate((Command)root, (c, word) => c.Subcommands.Single(s => s.Name == word));
        foreach (var option in command.Options.Where(o => !o.Hidden)) Assert.Contains(option.Name, result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_of_the_root_lists_every_command_and_the_exit_codes()
    {
        foreach (var help in new[] { await CliRunner.InProcess("--help"), await CliRunner.InProcess() })
        {
            Assert.Equal(0, help.ExitCode);
            foreach (var command in new[] { "demo", "ls", "inspect", "verify", "compact", "convert", "job", "run", "history", "token", "agent", "bench" })
                Assert.Contains($"  {command}", help.Out, StringComparison.Ordinal);
            Assert.Contains("exit codes: 0 ok, 1 verification failed or error, 2 usage", help.Out, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(new[] { "dmeo" }, "unknown command or argument 'dmeo'; did you mean 'demo'?")]
    [InlineData(new[] { "demo", "--dir", "x", "--widht", "3" }, "unknown option '--widht'; did you mean '--width'?")]
    [InlineData(new[] { "run", "shwo", "acme/r1" }, "unknown command or argument 'shwo'; did you mean 'show'?")]
    public async Task A_mistyped_word_is_a_one_line_usage_error_with_the_library_suggestion(string[] args, string message)
    {
        var result = await CliRunner.InProcess(args);

        Assert.Equal(CliApp.UsageExitCode, result.ExitCode);
        Assert.Equal("", result.Out);
        Assert.Single(result.Error.Trim().Split('\n'));
        Assert.Contains(message, result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chaos_refuses_an_unknown_fault_kind_before_it_builds_anything()
    {
        var result = await CliRunner.InProcess("chaos", "--faults", "partition,meteor", "--json");

        Assert.Equal(CliApp.UsageExitCode, result.ExitCode);
        Assert.StartsWith("--faults takes silo_kill, silo_term, partition, netem, azurite_restart, agent_kill", (string)result.Json["error"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_command_without_its_subcommand_names_them()
    {
        var result = await CliRunner.InProcess("bench");

        Assert.Equal(CliApp.UsageExitCode, result.ExitCode);
        Assert.Equal("ckpt: ckpt bench needs a subcommand: commits, io (ckpt bench --help shows the usage)", result.Error.Trim());
    }

    [Theory]
    [InlineData("ckpt de", "demo")]
    [InlineData("ckpt run ", "checkpoint-now")]
    [InlineData("ckpt bench io --device ", "cuda")]
    [InlineData("ckpt demo --fr", "--freeze")]
    public async Task The_suggest_directive_completes_commands_options_and_choices(string line, string expected)
    {
        var result = await CliRunner.InProcess($"[suggest:{line.Length}]", line);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains(expected, result.Out.Split('\n', StringSplitOptions.TrimEntries));
    }

    [Fact]
    public async Task An_at_sign_is_a_path_not_a_response_file()
    {
        var result = await CliRunner.InProcess("inspect", "@" + Path.Combine(_dir, "nothing"), "--json");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("@", (string)result.Json["error"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task On_terminals_tables_are_drawn_with_borders_and_progress_in_place_and_plain_otherwise()
    {
        var dir = Path.Combine(_dir, "run");
        Assert.Equal(0, (await CliRunner.InProcess("demo", "--dir", dir, "--iters", "4", "--period", "2", "--json")).ExitCode);

        var (terminalLs, plainLs) = (await OnTerminals("ls", dir), await CliRunner.InProcess("ls", dir));
        var (terminalVerify, plainVerify) = (await OnTerminals("verify", Path.Combine(dir, "model_final")), await CliRunner.InProcess("verify", Path.Combine(dir, "model_final")));

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
        var code = await CliApp.RunAsync(args, output, error, interactive: true, tables: true);
        return new CliResult(code, output.ToString(), error.ToString());
    }
}
