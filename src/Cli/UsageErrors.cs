using System.CommandLine;
using System.CommandLine.Invocation;

namespace Checkpointing.Cli;

/// <summary>A command line System.CommandLine refused, as one line: the first problem, with its typo correction when there is one.</summary>
public static class UsageErrors
{
    /// <summary>
    /// The first problem of a refused command line as one line: an unknown option or command with its typo corrections
    /// ("did you mean …?"), a command that needs a subcommand with the subcommands it has, or the parser's first error.
    /// </summary>
    public static string Describe(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        if (parse.UnmatchedTokens.Count == 0)
        {
            return command.Action is null && command.Subcommands.Count > 0
                ? $"{CommandPath(parse)} needs a subcommand: {string.Join(", ", command.Subcommands.Select(c => c.Name))}"
                : parse.Errors[0].Message;
        }
        var token = parse.UnmatchedTokens[0];
        var what = token.StartsWith('-') ? "option" : "command or argument";
        var corrections = TypoCorrections(parse);
        return corrections.Count == 0
            ? $"unknown {what} '{token}'"
            : $"unknown {what} '{token}'; did you mean {string.Join(" or ", corrections.Select(c => $"'{c}'"))}?";
    }

    /// <summary>"ckpt run create": the command whose help answers the error.</summary>
    public static string CommandPath(ParseResult parse)
    {
        var names = new List<string>();
        for (var result = parse.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Add(result.Command is RootCommand root ? root.HelpName ?? "ckpt" : result.Command.Name);
        }
        names.Reverse();
        return string.Join(' ', names);
    }

    /// <summary>
    /// The library's own suggestions for the first unmatched token. Its error action prints them as
    /// "'tok' was not matched. Did you mean one of the following?" followed by one candidate per line.
    /// </summary>
    private static List<string> TypoCorrections(ParseResult parse)
    {
        if (parse.Action is not ParseErrorAction action) return [];
        action.ShowHelp = false;
        action.ShowTypoCorrections = true;
        var suggestions = new StringWriter();
        parse.Invoke(new InvocationConfiguration { Output = suggestions, Error = TextWriter.Null }); // runs the error action
        return suggestions.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Skip(1).TakeWhile(line => !line.StartsWith('\'')).ToList();
    }
}
