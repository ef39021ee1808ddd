namespace Checkpointing.Cli;

/// <summary>
/// A one-line progress bar on stderr. On a terminal it redraws in place; when stderr is a file or
/// pipe (CI logs) it prints a plain line every tenth of the way instead.
/// </summary>
public sealed class ProgressBar(TextWriter output, long total, bool interactive)
{
    private const int Width = 30;
    private long _lastDecile = -1;

    public void Update(long done, string status)
    {
        var fraction = total <= 0 ? 1 : Math.Clamp((double)done / total, 0, 1);
        if (interactive)
        {
            var filled = (int)(fraction * Width);
            output.Write($"\r[{new string('#', filled)}{new string('.', Width - filled)}] {done}/{total} {status}".PadRight(100));
            return;
        }
        var decile = (long)(fraction * 10);
        if (decile == _lastDecile) return;
        _lastDecile = decile;
        output.WriteLine($"progress {done}/{total} ({fraction:P0}) {status}");
    }

    public void Finish()
    {
        if (interactive) output.WriteLine();
    }
}
