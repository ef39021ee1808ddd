using Microsoft.Extensions.Logging;

namespace Checkpointing.Cli;

/// <summary>Where a command writes and how it logs; tests run commands in-process with their own writers.</summary>
/// <param name="interactive">stderr is a terminal: progress is drawn in place (Spectre.Console) instead of printed as lines.</param>
/// <param name="tables">stdout is a terminal: tables are drawn with borders (Spectre.Console) instead of as aligned text.</param>
public sealed class CliContext(TextWriter output, TextWriter error, ILoggerFactory loggers, bool interactive, bool tables = false)
{
    public TextWriter Out { get; } = output;
    public TextWriter Error { get; } = error;
    public bool Interactive { get; } = interactive;
    public bool Tables { get; } = tables;
    public ILogger Logger(string category) => loggers.CreateLogger(category);
}
