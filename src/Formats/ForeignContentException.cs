namespace Checkpointing.Formats;

/// <summary>A destination holds objects that are not part of a checkpoint of ours; writing there is refused so nothing of the user's is touched.</summary>
public sealed class ForeignContentException(string destination, IReadOnlyList<string> foreign)
    : InvalidOperationException($"{destination} holds {foreign.Count} file(s) that are not part of a checkpoint (e.g. {string.Join(", ", foreign.Take(3))}); " +
        "refusing to write a checkpoint there. Choose an empty or new folder.")
{
    /// <summary>The objects found that no checkpoint of ours would hold (store keys or file names); the message quotes the first three.</summary>
    public IReadOnlyList<string> Foreign { get; } = foreign;
}
