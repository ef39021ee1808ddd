using Spectre.Console;

namespace Checkpointing.Cli;

/// <summary>
/// Rows on stdout: a Spectre.Console table with borders when stdout is a terminal; aligned plain text
/// (fixed widths, one row per line, what scripts and logs have always read) when it is not.
/// </summary>
public sealed class CliTable(params CliColumn[] columns)
{
    private readonly List<string[]> _rows = [];

    /// <summary>Adds a row, one cell per column; returns this table.</summary>
    /// <exception cref="ArgumentException">The row does not have one cell per column.</exception>
    public CliTable Add(params string[] cells)
    {
        if (cells.Length != columns.Length) throw new ArgumentException($"a row needs {columns.Length} cells, got {cells.Length}", nameof(cells));
        _rows.Add(cells);
        return this;
    }

    /// <summary>Writes the header and the rows to the context's stdout, with borders when <see cref="CliContext.Tables"/>.</summary>
    public void Write(CliContext context) => Write(context.Out, context.Tables);

    /// <summary>Writes the header and the rows to <paramref name="output"/>.</summary>
    /// <param name="output">Where the table goes.</param>
    /// <param name="terminal">The writer is a terminal: draw borders.</param>
    public void Write(TextWriter output, bool terminal)
    {
        if (!terminal)
        {
            output.WriteLine(PlainLine(columns.Select(c => c.Header).ToArray()));
            foreach (var row in _rows) output.WriteLine(PlainLine(row));
            return;
        }
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var c in columns) table.AddColumn(new TableColumn(Markup.Escape(c.Header)) { Alignment = c.Right ? Justify.Right : Justify.Left });
        foreach (var row in _rows) table.AddRow(row.Select(cell => new Text(cell)).ToArray<Spectre.Console.Rendering.IRenderable>());
        AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) }).Write(table);
    }

    private string PlainLine(string[] cells) =>
        string.Join(' ', cells.Select((cell, i) => columns[i].Right ? cell.PadLeft(columns[i].Width) : cell.PadRight(columns[i].Width))).TrimEnd();
}
