using Orleans.Serialization;
using Orleans.Storage;

namespace Checkpointing.Grains;

/// <summary>
/// Grain state in Orleans' binary format, behind a two-byte marker. Orleans' default for storage
/// is Newtonsoft JSON, which profiling showed to be over half of a silo's CPU per commit; the binary
/// format is version tolerant through the state types' [Id]s like the wire format. State written
/// as JSON (by the first release) is still read; it is rewritten in binary at the next write.
/// </summary>
public sealed class BinaryStateSerializer(Serializer serializer, JsonGrainStorageSerializer legacyJson) : IGrainStorageSerializer
{
    private static readonly byte[] Marker = [0xC7, 0x01];

    /// <summary>The state in Orleans' binary format, behind the marker.</summary>
    public BinaryData Serialize<T>(T? input)
    {
        var body = serializer.SerializeToArray(input);
        var bytes = new byte[Marker.Length + body.Length];
        Marker.CopyTo(bytes, 0);
        body.CopyTo(bytes, Marker.Length);
        return new BinaryData(bytes);
    }

    /// <summary>Reads state written by <see cref="Serialize{T}"/> or, without the marker, the first release's JSON.</summary>
    /// <exception cref="InvalidDataException">the bytes are neither</exception>
    public T? Deserialize<T>(BinaryData input)
    {
        var bytes = input.ToMemory();
        if (bytes.Span.StartsWith(Marker)) return serializer.Deserialize<T>(bytes[Marker.Length..]);
        if (bytes.Span.TrimStart(" \t\r\n"u8).StartsWith("{"u8)) return legacyJson.Deserialize<T>(input);
        throw new InvalidDataException($"Grain state of {bytes.Length} bytes is neither this silo's binary format nor JSON.");
    }
}
