namespace Checkpointing.Abstractions;

/// <summary>
/// Validates checkpoint names and store key segments. Names travel into file paths and blob
/// names, so only a conservative character set is accepted and path tricks are refused outright.
/// </summary>
public static class CheckpointName
{
    /// <summary>The longest valid name, in characters.</summary>
    public const int MaxLength = 200;

    /// <summary>Throws <see cref="ArgumentException"/> naming the problem when <paramref name="name"/> is not a valid checkpoint name.</summary>
    public static string Validate(string? name, string what = "checkpoint name")
    {
        var problem = Problem(name);
        if (problem is not null)
        {
            throw new ArgumentException($"Invalid {what} '{name}': {problem}.", nameof(name));
        }
        return name!;
    }

    /// <summary>Whether <paramref name="name"/> is a valid checkpoint name (see <see cref="Problem"/>); never throws.</summary>
    public static bool IsValid(string? name) => Problem(name) is null;

    /// <summary>Why <paramref name="name"/> is not a valid name, or null when it is one.</summary>
    public static string? Problem(string? name)
    {
        if (string.IsNullOrEmpty(name)) return "it is empty";
        if (name.Length > MaxLength) return $"it is longer than {MaxLength} characters";
        if (name is "." or "..") return "'.' and '..' are not names";
        if (name[0] == '.') return "it must not start with '.' (reserved for temporary files)";
        foreach (var c in name)
        {
            if (c is '/' or '\\') return "path separators are not allowed";
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or '+' or '=' or '@'))
            {
                return $"character '{c}' (U+{(int)c:X4}) is not allowed; use letters, digits and _ - . + = @";
            }
        }
        return null;
    }
}
