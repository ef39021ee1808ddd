using Microsoft.Extensions.Logging;

namespace Checkpointing.Cli;

/// <summary>Where a command writes and how it logs; tests run commands in-process with their own writers.</summary>
/// <param name="output">Where results go (stdout): tables, JSON, one-line answers.</param>
/// <param name="error">Where progress and failures go (stderr).</param>
/// <param name="loggers">Creates the loggers that <see cref="Logger"/> hands out.</param>
/// <param name="interactive">stderr is a terminal: progress is drawn in place (Spectre.Console) instead of printed as lines.</param>
/// <param name="tables">stdout is a terminal: tables are drawn with borders (Spectre.Console) instead of as aligned text.</param>
public sealed class CliContext(TextWriter output, TextWriter error, ILoggerFactory loggers, bool interactive, bool tables = false)
{
    /// <summary>Where results go (stdout): tables, JSON, one-line answers.</summary>
    public TextWriter Out { get; } = output;
    /// <summary>Where progress and failures go (stderr).</summary>
    public TextWriter Error { get; } = error;
    /// <summary>stderr is a terminal: progress is drawn in place instead of printed as lines.</summary>
    public bool Interactive { get; } = interactive;
    /// <summary>stdout is a terminal: tables are drawn with borders instead of as aligned text.</summary>
    public bool Tables { get; } = tables;
    /// <summary>A logger for <paramref name="category"/> from the context's factory (<see cref="CliApp"/>'s logs warnings and up to stderr, information too with --verbose).</summary>
    public ILogger Logger(string category) => loggers.CreateLogger(category);
}
