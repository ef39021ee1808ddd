using System.IO.Compression;

namespace Checkpointing.Formats.Interop.Torch;

/// <summary>Reads whole zip records with their sizes checked, reporting damage as <see cref="CheckpointFormatException"/>.</summary>
internal static class ZipRecords
{
    public static byte[] ReadAll(ZipArchiveEntry entry, string source)
    {
        if (entry.Length > Array.MaxLength)
            throw new CheckpointFormatException(source, "zip", $"record {entry.FullName} has {entry.Length} bytes; at most {Array.MaxLength} are supported");
        var bytes = new byte[entry.Length];
        try
        {
            using var stream = entry.Open();
            stream.ReadExactly(bytes);
            if (stream.ReadByte() != -1) throw new InvalidDataException("the record is longer than its directory entry says");
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
        {
            throw new CheckpointFormatException(source, "zip", $"record {entry.FullName} is unreadable ({e.Message}); the file is truncated or damaged", e);
        }
        return bytes;
    }

    public static string ReadText(ZipArchiveEntry entry, string source) => System.Text.Encoding.UTF8.GetString(ReadAll(entry, source));
}
