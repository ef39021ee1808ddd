using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Checkpointing.Contracts;

namespace Checkpointing.Cli;

/// <summary>
/// The kinds of option the commands declare, on System.CommandLine. Values are checked while parsing,
/// so a bad value is a usage error naming the option before any command starts work.
/// </summary>
public static class CliOptions
{
    /// <summary>An option without a value ("--json"): true when given.</summary>
    public static Option<bool> Flag(string name, string description) => new(name) { Description = description };

    /// <summary>--json: the command prints one JSON object on stdout, and so does a failure.</summary>
    public static Option<bool> Json() => Flag("--json", "print one JSON object on stdout (a failure too)");

    /// <summary>An option taking any text, or null when not given; <paramref name="valueName"/> names the value in help ("FILE").</summary>
    public static Option<string?> Text(string name, string description, string? valueName = null) =>
        new(name) { Description = description, HelpName = valueName };

    /// <summary>An option taking any text that the command line must give (a usage error otherwise); <paramref name="valueName"/> names the value in help.</summary>
    public static Option<string> RequiredText(string name, string description, string valueName) =>
        new(name) { Description = description, HelpName = valueName, Required = true };

    /// <summary>An integer of at least <paramref name="min"/>, <paramref name="fallback"/> when not given.</summary>
    public static Option<long> Integer(string name, string description, long fallback, long min = long.MinValue) => new(name)
    {
        Description = description,
        HelpName = "N",
        DefaultValueFactory = _ => fallback,
        CustomParser = r => ParseInteger(r, name, min) ?? fallback,
    };

    /// <summary>An integer of at least <paramref name="min"/>, or null when not given.</summary>
    public static Option<long?> OptionalInteger(string name, string description, long min = long.MinValue) => new(name)
    {
        Description = description,
        HelpName = "N",
        CustomParser = r => ParseInteger(r, name, min),
    };

    /// <summary>A number from 0 to 1 (invariant culture, "0.25"), or null when not given; anything else is a usage error.</summary>
    public static Option<double?> Fraction(string name, string description) => new(name)
    {
        Description = description,
        HelpName = "F",
        CustomParser = r =>
        {
            var text = r.Tokens.Single().Value;
            if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value is >= 0 and <= 1) return value;
            r.AddError($"{name} must be a fraction between 0 and 1, got '{text}'");
            return null;
        },
    };

    /// <summary>One of <paramref name="choices"/> (help and completions list them), <paramref name="fallback"/> when not given.</summary>
    public static Option<string?> Choice(string name, string description, string? fallback, params string[] choices)
    {
        var option = new Option<string?>(name) { Description = description, HelpName = string.Join('|', choices) };
        if (fallback is not null) option.DefaultValueFactory = _ => fallback;
        option.CompletionSources.Add(choices);
        option.Validators.Add(r =>
        {
            if (r.Tokens.Count > 0 && !choices.Contains(r.Tokens[^1].Value, StringComparer.Ordinal))
                r.AddError($"{name} must be {string.Join(" or ", choices)}, got '{r.Tokens[^1].Value}'");
        });
        return option;
    }

    /// <summary>
    /// A comma-separated choice of some of <paramref name="known"/> (all when not given; help and completions
    /// list them). <paramref name="refusal"/> words the error for the first unknown name, or for none at all (null).
    /// </summary>
    public static Option<string[]> Subset(string name, string description, string helpName, IReadOnlyList<string> known, Func<string?, string> refusal)
    {
        var option = new Option<string[]>(name)
        {
            Description = description,
            HelpName = helpName,
            DefaultValueFactory = _ => [.. known],
            CustomParser = r => r.Tokens.Single().Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
        };
        option.CompletionSources.Add([.. known]);
        option.Validators.Add(r =>
        {
            var chosen = r.GetValueOrDefault<string[]>();
            if (chosen is []) r.AddError(refusal(null));
            else if (chosen.FirstOrDefault(c => !known.Contains(c)) is { } unknown) r.AddError(refusal(unknown));
        });
        return option;
    }

    /// <summary>A positional argument taking any text, one the command line must give; <paramref name="name"/> is how help shows it ("PATH").</summary>
    public static Argument<string> Positional(string name, string description) => new(name) { Description = description };

    /// <summary>A run "tenant/run" as an argument: a malformed one is a usage error of the command that took it.</summary>
    public static Argument<RunId> RunArgument(string description) => new("TENANT/RUN") { Description = description, CustomParser = r => ParseRun(r, "TENANT/RUN") };

    /// <summary>A run "tenant/run" as an option, or null when not given; a malformed one is a usage error.</summary>
    public static Option<RunId?> RunOption(string name, string description) => new(name) { Description = description, HelpName = "TENANT/RUN", CustomParser = r => ParseRun(r, name) };

    private static RunId? ParseRun(ArgumentResult result, string name)
    {
        var text = result.Tokens.Single().Value;
        if (RunId.Problem(text) is { } problem)
        {
            result.AddError($"{name}: {char.ToLowerInvariant(problem[0])}{problem[1..]}");
            return null;
        }
        return RunId.Parse(text);
    }

    private static long? ParseInteger(ArgumentResult result, string name, long min)
    {
        var text = result.Tokens.Single().Value;
        if (long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min) return value;
        result.AddError(min == long.MinValue ? $"{name} must be an integer, got '{text}'" : $"{name} must be an integer >= {min}, got '{text}'");
        return null;
    }

    /// <summary>Adds options and arguments to a command (collection initializers read badly for a mix of both).</summary>
    public static Command With(this Command command, params Symbol[] symbols)
    {
        foreach (var symbol in symbols)
        {
            switch (symbol)
            {
                case Option option: command.Options.Add(option); break;
                case Argument argument: command.Arguments.Add(argument); break;
                case Command sub: command.Subcommands.Add(sub); break;
                default: throw new ArgumentException($"cannot add a {symbol.GetType().Name} to a command", nameof(symbols));
            }
        }
        return command;
    }
}
