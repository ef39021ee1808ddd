using Spectre.Console;
using Spectre.Console.Rendering;

namespace Checkpointing.Cli;

/// <summary>
/// Progress on stderr: a Spectre.Console bar drawn in place when stderr is a terminal; otherwise (files,
/// pipes, CI logs) a plain line every tenth of the way, which scripts and logs read better.
/// </summary>
public static class CliProgress
{
    /// <summary>Runs <paramref name="work"/> with a progress line on the context's stderr, as <see cref="RunAsync{T}(CliContext, string, long, Func{IProgressLine, Task{T}})"/> does.</summary>
    public static async Task RunAsync(CliContext context, string description, long total, Func<IProgressLine, Task> work) =>
        await RunAsync<bool>(context, description, total, async line =>
        {
            await work(line);
            return true;
        });

    /// <summary>
    /// Runs <paramref name="work"/> with a progress line on the context's stderr and returns its result: a bar drawn in place when
    /// <see cref="CliContext.Interactive"/>, labelled <paramref name="description"/>; else a plain line ("progress done/total") each
    /// time another tenth of <paramref name="total"/> is done.
    /// </summary>
    public static async Task<T> RunAsync<T>(CliContext context, string description, long total, Func<IProgressLine, Task<T>> work)
    {
        if (!context.Interactive) return await work(new PlainLines(context.Error, total));
        // The caller found stderr to be a terminal: draw in place, whatever Spectre would detect on the writer.
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(context.Error), Ansi = AnsiSupport.Yes, Interactive = InteractionSupport.Yes });
        var status = new StatusColumn();
        return await console.Progress()
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = 24 }, new PercentageColumn(), new ElapsedTimeColumn(),
                new RemainingTimeColumn(), status)
            .StartAsync(progress => work(new SpectreLine(console, progress.AddTask(Markup.Escape(description), maxValue: Math.Max(1, total)), description, status)));
    }

    private sealed class SpectreLine(IAnsiConsole console, ProgressTask task, string description, StatusColumn status) : IProgressLine
    {
        public void Update(long done, string text)
        {
            task.Value = done;
            task.Description = Markup.Escape($"{description} {done}/{task.MaxValue:0}");
            status.Text = text;
        }

        public void Log(string line) => console.WriteLine(line);
    }

    /// <summary>The command's status ("loss 0.01 saved model_0000019") after the bar, cut with an ellipsis when the terminal is narrow.</summary>
    private sealed class StatusColumn : ProgressColumn
    {
        private volatile string _text = "";

        public string Text
        {
            set => _text = value;
        }

        protected override bool NoWrap => true;

        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) => new Text(_text) { Overflow = Overflow.Ellipsis };
    }

    private sealed class PlainLines(TextWriter output, long total) : IProgressLine
    {
        private readonly Lock _lock = new();
        private long _lastDecile = -1;

        public void Update(long done, string status)
        {
            var fraction = total <= 0 ? 1 : Math.Clamp((double)done / total, 0, 1);
            var decile = (long)(fraction * 10);
            lock (_lock)
            {
                if (decile == _lastDecile) return;
                _lastDecile = decile;
                output.WriteLine($"progress {done}/{total} ({fraction:P0}) {status}");
            }
        }

        public void Log(string line)
        {
            lock (_lock) output.WriteLine(line);
        }
    }
}
