namespace Checkpointing.Formats;

/// <summary>Formats and compares the "crc64:&lt;hex&gt;" checksums recorded in manifests.</summary>
public static class ShardChecksum
{
    /// <summary>The prefix that names the algorithm, CRC-64 (as <see cref="System.IO.Hashing.Crc64"/> computes it).</summary>
    public const string Crc64Prefix = "crc64:";

    /// <summary><paramref name="crc"/> as the manifest records it: the prefix and 16 lower-case hex digits.</summary>
    public static string Format(ulong crc) => $"{Crc64Prefix}{crc:x16}";

    /// <summary>Whether <paramref name="checksum"/> has the form <see cref="Format"/> writes; false for null.</summary>
    public static bool IsWellFormed(string? checksum) =>
        checksum is { Length: 22 } && checksum.StartsWith(Crc64Prefix, StringComparison.Ordinal) &&
        checksum.AsSpan(Crc64Prefix.Length).ContainsAnyExcept("0123456789abcdef") is false;
}
