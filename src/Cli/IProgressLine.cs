namespace Checkpointing.Cli;

/// <summary>One piece of long work's progress, as the command reports it.</summary>
public interface IProgressLine
{
    /// <summary><paramref name="done"/> of the total, with a short status ("loss 0.01 saved model_0000019").</summary>
    void Update(long done, string status);

    /// <summary>A line of its own, printed above the progress (a plain line when there is no terminal).</summary>
    void Log(string line);
}
