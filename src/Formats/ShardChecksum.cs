namespace Checkpointing.Formats;

/// <summary>Formats and compares the "crc64:&lt;hex&gt;" checksums recorded in manifests.</summary>
public static class ShardChecksum
{
    public const string Crc64Prefix = "crc64:";

    public static string Format(ulong crc) => $"{Crc64Prefix}{crc:x16}";

    public static bool IsWellFormed(string? checksum) =>
        checksum is { Length: 22 } && checksum.StartsWith(Crc64Prefix, StringComparison.Ordinal) &&
        checksum.AsSpan(Crc64Prefix.Length).ContainsAnyExcept("0123456789abcdef") is false;
}
