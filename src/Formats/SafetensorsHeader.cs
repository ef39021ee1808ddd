using System.Buffers.Binary;
using System.Text.Json;
using System.Text.Unicode;

namespace Checkpointing.Formats;

/// <summary>
/// The parsed and validated header of a safetensors file: 8-byte little-endian length, a JSON
/// object of tensors (plus optional string-to-string "__metadata__"), then the data section.
/// Parsing is strict: every rule of the format is checked, each with its own message.
/// </summary>
public sealed class SafetensorsHeader
{
    /// <summary>Same bound as the reference implementation: a larger header is refused before allocation.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>Most tensors one file may declare (real checkpoints hold thousands).</summary>
    public const int MaxTensors = 1_000_000;

    /// <summary>Most dimensions one tensor may have.</summary>
    public const int MaxRank = 64;

    /// <summary>Nesting the format needs: root object, tensor object, shape array.</summary>
    public const int MaxJsonDepth = 8;

    /// <summary>
    /// The tensors in data order (by begin, then end, then key): they cover the data section exactly, without holes or
    /// overlaps. Excludes <c>__metadata__</c>.
    /// </summary>
    public required IReadOnlyList<SafetensorsEntry> Entries { get; init; }

    /// <summary>The <c>__metadata__</c> entries, in file order; empty when the file has none.</summary>
    public required IReadOnlyDictionary<string, string> Metadata { get; init; }

    /// <summary>Byte offset of the data section from the start of the file.</summary>
    public required long DataStart { get; init; }

    /// <summary>Bytes of the data section: the end of the last tensor, 0 when there is none.</summary>
    public long DataLength => Entries.Count == 0 ? 0 : Entries[^1].End;

    /// <summary>Reads and validates the header from the current position of <paramref name="stream"/> (the file start).</summary>
    public static SafetensorsHeader Read(Stream stream, long fileLength, string source)
    {
        CheckFileHoldsPrefix(fileLength, source);
        Span<byte> prefix = stackalloc byte[8];
        ReadExactly(stream, prefix, source, "header length");
        var json = new byte[HeaderLength(prefix, fileLength, source)];
        ReadExactly(stream, json, source, "header");
        return Parse(json, fileLength, source);
    }

    /// <summary>Refuses a file too short to hold the 8-byte header length.</summary>
    public static void CheckFileHoldsPrefix(long fileLength, string source)
    {
        if (fileLength < 8) throw new CheckpointFormatException(source, "length", $"file has {fileLength} bytes, fewer than the 8-byte header length");
    }

    /// <summary>The header's length from the file's first 8 bytes, refused when over the limit or longer than the file holds.</summary>
    public static int HeaderLength(ReadOnlySpan<byte> prefix, long fileLength, string source)
    {
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > MaxHeaderBytes) throw new CheckpointFormatException(source, "header length", $"{headerLength} bytes exceeds the limit of {MaxHeaderBytes}");
        if ((long)headerLength > fileLength - 8) throw new CheckpointFormatException(source, "header length", $"header of {headerLength} bytes does not fit in a file of {fileLength} bytes (truncated?)");
        return (int)headerLength;
    }

    /// <summary>
    /// Parses and validates the header JSON: known fields and dtypes only, no duplicate keys, dtype × shape equal to each
    /// tensor's byte span, and tensors that cover the rest of the file exactly.
    /// </summary>
    /// <param name="json">the header: the bytes after the 8-byte length</param>
    /// <param name="fileLength">the whole file's length in bytes, prefix and header included</param>
    /// <param name="source">the name errors report</param>
    /// <exception cref="CheckpointFormatException">The header breaks any rule; its <see cref="CheckpointFormatException.Check"/> says which.</exception>
    public static SafetensorsHeader Parse(ReadOnlySpan<byte> json, long fileLength, string source)
    {
        var dataStart = 8 + (long)json.Length;
        // Checked up front: System.Text.Json only finds bad UTF-8 when a string is read, with an InvalidOperationException.
        if (!Utf8.IsValid(json)) throw new CheckpointFormatException(source, "header JSON", "the header is not valid UTF-8");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = MaxJsonDepth });
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(source, "header JSON", e.Message, e);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new CheckpointFormatException(source, "header JSON", $"expected an object, found {document.RootElement.ValueKind}");

            var entries = new List<SafetensorsEntry>();
            var metadata = new OrderedDictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name)) throw new CheckpointFormatException(source, "header", $"duplicate key '{property.Name}'");
                if (property.Name == "__metadata__")
                {
                    ParseMetadata(property.Value, metadata, source);
                    continue;
                }
                if (entries.Count == MaxTensors) throw new CheckpointFormatException(source, "tensor count", $"header declares more than the limit of {MaxTensors} tensors");
                entries.Add(ParseEntry(property.Name, property.Value, source));
            }
            // As the official reader does: order by (begin, end), so empty tensors sit before the tensor that starts
            // at their offset. The key breaks the remaining ties, making the order independent of the sort's stability.
            entries.Sort(static (a, b) =>
                a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin)
                : a.End != b.End ? a.End.CompareTo(b.End)
                : string.CompareOrdinal(a.Key, b.Key));
            CheckCoverage(entries, fileLength - dataStart, source);
            return new SafetensorsHeader { Entries = entries, Metadata = metadata, DataStart = dataStart };
        }
    }

    private static SafetensorsEntry ParseEntry(string key, JsonElement value, string source)
    {
        if (value.ValueKind != JsonValueKind.Object) throw new CheckpointFormatException(source, "header", $"tensor '{key}' is not an object");
        string? dtypeName = null;
        long[]? shape = null;
        long[]? offsets = null;
        var fields = new HashSet<string>(StringComparer.Ordinal);
        foreach (var field in value.EnumerateObject())
        {
            if (!fields.Add(field.Name)) throw new CheckpointFormatException(source, "header", $"tensor '{key}' has field '{field.Name}' twice");
            switch (field.Name)
            {
                case "dtype":
                    dtypeName = field.Value.ValueKind == JsonValueKind.String ? field.Value.GetString() : throw new CheckpointFormatException(source, "header", $"tensor '{key}': dtype is not a string");
                    break;
                case "shape":
                    shape = ReadLongArray(field.Value, key, "shape", source);
                    break;
                case "data_offsets":
                    offsets = ReadLongArray(field.Value, key, "data_offsets", source);
                    break;
                default:
                    throw new CheckpointFormatException(source, "header", $"tensor '{key}' has unknown field '{field.Name}'");
            }
        }
        if (dtypeName is null || shape is null || offsets is null)
            throw new CheckpointFormatException(source, "header", $"tensor '{key}' needs dtype, shape and data_offsets");
        if (!TensorDTypes.TryParse(dtypeName, out var dtype))
            throw new CheckpointFormatException(source, "dtype", $"tensor '{key}' has unknown dtype '{dtypeName}' (supported: {TensorDTypes.SupportedNames})");
        if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0])
            throw new CheckpointFormatException(source, "data offsets", $"tensor '{key}' has data_offsets [{string.Join(", ", offsets)}]; expected [begin, end] with 0 <= begin <= end");
        long expected;
        try
        {
            expected = TensorDTypes.ByteLength(dtype, shape);
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new CheckpointFormatException(source, "shape", $"tensor '{key}': {e.Message}", e);
        }
        if (expected != offsets[1] - offsets[0])
            throw new CheckpointFormatException(source, "dtype x shape", $"tensor '{key}' is {dtype}[{string.Join(", ", shape)}] = {expected} bytes but its data_offsets span {offsets[1] - offsets[0]}");
        return new SafetensorsEntry(key, dtype, shape, offsets[0], offsets[1]);
    }

    private static void CheckCoverage(List<SafetensorsEntry> sorted, long dataLength, string source)
    {
        long cursor = 0;
        foreach (var entry in sorted)
        {
            if (entry.Begin < cursor)
                throw new CheckpointFormatException(source, "data offsets", $"tensor '{entry.Key}' [{entry.Begin}, {entry.End}) overlaps the previous tensor ending at {cursor}");
            if (entry.Begin > cursor)
                throw new CheckpointFormatException(source, "data offsets", $"hole of {entry.Begin - cursor} bytes before tensor '{entry.Key}' at {cursor}");
            cursor = entry.End;
        }
        if (cursor > dataLength)
            throw new CheckpointFormatException(source, "data offsets", $"tensors end at {cursor} but the data section has only {dataLength} bytes (truncated?)");
        if (cursor < dataLength)
            throw new CheckpointFormatException(source, "data offsets", $"data section has {dataLength - cursor} trailing bytes no tensor covers");
    }

    private static void ParseMetadata(JsonElement value, OrderedDictionary<string, string> metadata, string source)
    {
        if (value.ValueKind != JsonValueKind.Object) throw new CheckpointFormatException(source, "header", "__metadata__ is not an object");
        foreach (var field in value.EnumerateObject())
        {
            if (field.Value.ValueKind != JsonValueKind.String) throw new CheckpointFormatException(source, "header", $"__metadata__ value '{field.Name}' is not a string");
            if (!metadata.TryAdd(field.Name, field.Value.GetString()!)) throw new CheckpointFormatException(source, "header", $"__metadata__ has key '{field.Name}' twice");
        }
    }

    private static long[] ReadLongArray(JsonElement value, string key, string field, string source)
    {
        if (value.ValueKind != JsonValueKind.Array) throw new CheckpointFormatException(source, "header", $"tensor '{key}': {field} is not an array");
        if (value.GetArrayLength() > MaxRank) throw new CheckpointFormatException(source, "shape", $"tensor '{key}': {field} has {value.GetArrayLength()} entries, more than the limit of {MaxRank}");
        var result = new long[value.GetArrayLength()];
        var i = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out result[i]) || result[i] < 0)
                throw new CheckpointFormatException(source, "header", $"tensor '{key}': {field}[{i}] is not a non-negative integer");
            i++;
        }
        return result;
    }

    private static void ReadExactly(Stream stream, Span<byte> buffer, string source, string what)
    {
        try
        {
            stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException e)
        {
            throw new CheckpointFormatException(source, "length", $"file ended inside the {what} (truncated)", e);
        }
    }

    /// <summary>Serializes a header, padded with spaces so the data section starts 8-byte aligned.</summary>
    public static byte[] Build(IReadOnlyList<SafetensorsEntry> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        using var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) writer.WriteString(k, v);
                writer.WriteEndObject();
            }
            foreach (var e in entries)
            {
                writer.WriteStartObject(e.Key);
                writer.WriteString("dtype", e.DType.Name());
                writer.WriteStartArray("shape");
                foreach (var d in e.Shape) writer.WriteNumberValue(d);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(e.Begin);
                writer.WriteNumberValue(e.End);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        }
        var length = json.Length;
        var padded = (length + 7) / 8 * 8;
        var result = new byte[8 + padded];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)padded);
        json.GetBuffer().AsSpan(0, (int)length).CopyTo(result.AsSpan(8));
        result.AsSpan(8 + (int)length).Fill((byte)' ');
        return result;
    }
}
