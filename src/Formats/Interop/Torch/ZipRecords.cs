using System.IO.Compression;

namespace Checkpointing.Formats.Interop.Torch;

/// <summary>Reads whole zip records with their sizes checked, reporting damage as <see cref="CheckpointFormatException"/>.</summary>
internal static class ZipRecords
{
    /// <summary>A record this small may inflate by any ratio (a deflated empty record is a few bytes).</summary>
    private const long AnyRatioBytes = 4096;

    /// <summary>
    /// The record's bytes. Its declared size is checked against the compression-ratio limit and charged
    /// to <paramref name="meter"/> before anything is allocated or inflated; inflation stops at that size.
    /// </summary>
    public static byte[] ReadAll(ZipArchiveEntry entry, BudgetMeter meter)
    {
        var ratio = meter.Budget.MaxCompressionRatio;
        if (entry.Length > AnyRatioBytes && entry.Length / ratio > entry.CompressedLength)
            throw meter.Exceeded($"zip record {entry.FullName} inflates {entry.CompressedLength} bytes to {entry.Length} "
                + $"(limit {nameof(ReadBudget.MaxCompressionRatio)} = {ratio}:1)");
        meter.ChargeBytes(entry.Length, $"zip record {entry.FullName}");
        if (entry.Length > Array.MaxLength)
            throw new CheckpointFormatException(meter.Source, "zip", $"record {entry.FullName} has {entry.Length} bytes; at most {Array.MaxLength} are supported");
        var bytes = new byte[entry.Length];
        try
        {
            using var stream = entry.Open();
            stream.ReadExactly(bytes);
            if (stream.ReadByte() != -1) throw new InvalidDataException("the record is longer than its directory entry says");
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
        {
            throw new CheckpointFormatException(meter.Source, "zip", $"record {entry.FullName} is unreadable ({e.Message}); the file is truncated or damaged", e);
        }
        return bytes;
    }

    public static string ReadText(ZipArchiveEntry entry, BudgetMeter meter) => System.Text.Encoding.UTF8.GetString(ReadAll(entry, meter));
}
