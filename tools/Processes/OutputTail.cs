namespace Checkpointing.Processes;

/// <summary>The last lines a child process wrote, at most <c>capacity</c> of them, for an error that says why it ended.</summary>
public sealed class OutputTail(int capacity)
{
    private readonly Queue<string> _lines = new();

    public void Add(string line)
    {
        lock (_lines)
        {
            _lines.Enqueue(line);
            if (_lines.Count > capacity) _lines.Dequeue();
        }
    }

    public IReadOnlyList<string> Lines
    {
        get { lock (_lines) return _lines.ToList(); }
    }
}
