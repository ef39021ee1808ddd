using System.IO.Compression;
using Checkpointing.Formats.Interop.Pickle;
using Checkpointing.Formats.Interop.Torch;
using Checkpointing.Storage;

namespace Checkpointing.Formats.Tests.Fuzz;

/// <summary>A parser under fuzzing: it must accept the input or refuse it with a documented exception.</summary>
public sealed record FuzzTarget(string Name, Action<byte[]> Parse);

public static class FuzzTargets
{
    /// <summary>
    /// The only exception types a reader of untrusted bytes may throw (README "Safety"): a
    /// <see cref="CheckpointFormatException"/> names the file, the check and, for a budget, the limit.
    /// Anything else escaping is a bug.
    /// </summary>
    public static IReadOnlyList<Type> DocumentedExceptions { get; } = [typeof(CheckpointFormatException)];

    public static FuzzTarget PickleMachine { get; } = new("pickle VM (SafeUnpickler)", bytes => SafeUnpickler.Load(bytes, "fuzz.pkl"));

    public static FuzzTarget PthZip { get; } = new(".pth zip reader (PthReader)", bytes => PthReader.Read(new MemoryStream(bytes), "fuzz.pth"));

    public static FuzzTarget SafetensorsHeaderParser { get; } = new("safetensors header (SafetensorsHeader.Read)", bytes =>
        SafetensorsHeader.Read(new MemoryStream(bytes), bytes.Length, "fuzz.safetensors"));

    public static FuzzTarget ManifestParser { get; } = new("manifest.json (ManifestJson.Parse)", bytes => ManifestJson.Parse(bytes, ManifestJson.FileName));

    /// <summary>The seeds are bf16 tensors of <see cref="FuzzSeeds.EncodedRawBytes"/> bytes: decoded into a destination of that length.</summary>
    public static FuzzTarget BytegroupDecoder { get; } = new("bytegroup decoder (BytegroupCodec.Decode)", bytes =>
        BytegroupCodec.Decode(bytes, TensorDType.BF16, new byte[FuzzSeeds.EncodedRawBytes], "fuzz.ckz"));

    /// <summary>The seeds are entries of a <see cref="FuzzSeeds.BlockRows"/>-row table: the map is read from a store holding the entry alone.</summary>
    public static FuzzTarget BlockMapParser { get; } = new("block map (BlockMap.ReadAsync)", bytes =>
    {
        var store = new MemoryStore();
        store.WriteAsync("entry", (stream, ct) => stream.WriteAsync(bytes, ct).AsTask()).GetAwaiter().GetResult();
        BlockMap.ReadAsync(store, "entry", 0, bytes.Length, FuzzSeeds.BlockRows * FuzzSeeds.BlockRowBytes, FuzzSeeds.BlockRowBytes, "fuzz", default).GetAwaiter().GetResult();
    });

    /// <summary>The records of a zip, in order: a .pth's data.pkl can be mutated and the zip rebuilt with valid CRCs.</summary>
    public static List<(string Name, byte[] Data)> Records(byte[] zip)
    {
        using var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read);
        return archive.Entries.Select(e =>
        {
            using var stream = e.Open();
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            return (e.FullName, copy.ToArray());
        }).ToList();
    }
}
