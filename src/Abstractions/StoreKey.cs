namespace Checkpointing.Abstractions;

/// <summary>
/// Keys inside an <see cref="ICheckpointStore"/> are relative, '/'-separated paths whose every
/// segment is a valid <see cref="CheckpointName"/>. This keeps `../x`, absolute paths and
/// hidden temporary names out of every store implementation.
/// </summary>
public static class StoreKey
{
    /// <summary>The longest valid key, in characters.</summary>
    public const int MaxLength = 1024;

    /// <summary>Returns <paramref name="key"/> when it is a valid store key.</summary>
    /// <exception cref="ArgumentException">the key is empty, longer than <see cref="MaxLength"/>, or has a segment that is not a valid <see cref="CheckpointName"/>; the message names the problem</exception>
    public static string Validate(string? key)
    {
        if (string.IsNullOrEmpty(key)) throw new ArgumentException("Invalid store key: it is empty.", nameof(key));
        if (key.Length > MaxLength) throw new ArgumentException($"Invalid store key '{key}': longer than {MaxLength} characters.", nameof(key));
        foreach (var segment in key.Split('/'))
        {
            if (!CheckpointName.IsValid(segment))
            {
                CheckpointName.Validate(segment, $"segment '{segment}' of store key '{key}'");
            }
        }
        return key;
    }
}
