using Checkpointing.Abstractions;
using CsCheck;

namespace Checkpointing.Formats.Tests.Properties;

/// <summary>
/// The two JSON parsers of this project never fail with anything but <see cref="CheckpointFormatException"/>,
/// whatever bytes of a valid file are damaged: a sanity property next to the project's fuzz suite.
/// </summary>
public sealed class MutatedInputProperties
{
    /// <summary>Up to 8 edits of a file: overwrite a byte, insert one, or delete one.</summary>
    private static Gen<byte[]> Mutations(byte[] original, int editableBytes) =>
        Gen.Select(Gen.Int[0, 2], Gen.Int[0, editableBytes - 1], Gen.Byte).Array[1, 8].Select(edits =>
        {
            var bytes = new List<byte>(original);
            foreach (var (kind, at, value) in edits)
            {
                var index = Math.Min(at, bytes.Count - 1);
                switch (kind)
                {
                    case 0: bytes[index] = value; break;
                    case 1: bytes.Insert(index, value); break;
                    default: if (bytes.Count > 1) bytes.RemoveAt(index); break;
                }
            }
            return bytes.ToArray();
        });

    [Fact]
    public void A_damaged_safetensors_header_fails_only_with_a_format_error()
    {
        using var buffer = new MemoryStream();
        var tensors = new[] { ("w", TensorDType.F32, new long[] { 2, 3 }), ("empty", TensorDType.F8_E4M3, [0]), ("s", TensorDType.I64, []), ("u", TensorDType.U16, [3]) }
            .Select(t => new NamedTensor(t.Item1, HostTensor.Allocate(t.Item2, t.Item3))).ToList();
        SafetensorsShardWriter.Write(buffer, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        var valid = buffer.ToArray();
        var headerEnd = 8 + (int)BitConverter.ToUInt64(valid, 0);

        Mutations(valid, headerEnd).Sample(file =>
        {
            try
            {
                SafetensorsHeader.Read(new MemoryStream(file), file.Length, "m.safetensors");
            }
            catch (CheckpointFormatException)
            {
            }
        }, iter: 3000);
    }

    [Fact]
    public void A_damaged_manifest_fails_only_with_a_format_error()
    {
        var valid = ManifestJson.Serialize(new CheckpointManifest
        {
            FormatVersion = CheckpointManifest.CurrentFormatVersion, Run = "r", Name = "model_0000009", Iteration = 9, WorldSize = 1,
            CreatedUtc = DateTimeOffset.UnixEpoch,
            Shards = [new ShardInfo("shard-00000-of-00001-00000000.safetensors", 64, "crc64:0000000000000000"),
                new ShardInfo("shard-00000-of-00001-11111111.safetensors", 64, "crc64:0000000000000000", Checkpoint: "model_0000004")],
            Tensors = new Dictionary<string, TensorInfo>
            {
                ["model/w"] = new(0, "F32", [2], [0, 8]), ["model/e"] = new(0, "U64", [0], [8, 8]),
                ["model/reused"] = new(1, "F32", [2], [0, 8], "xxh128:" + new string('7', 32)),
                ["model/p@0"] = new(0, "F32", [2], [8, 16]), ["model/p@flat2"] = new(0, "F32", [2], [16, 24]),
            },
            Sharded = new Dictionary<string, ShardedTensorInfo>
            {
                ["model/p"] = new("F32", [4], [new TensorChunk("model/p@0", [0], null), new TensorChunk("model/p@flat2", null, 2)]),
            },
            State = new() { ["model"] = new System.Text.Json.Nodes.JsonObject { ["w"] = new System.Text.Json.Nodes.JsonObject { ["$tensor"] = "model/w" }, ["p"] = new System.Text.Json.Nodes.JsonObject { ["$tensor"] = "model/p" } }, ["lr"] = 0.5, ["tags"] = new System.Text.Json.Nodes.JsonArray("a", 1, null) },
        });
        Assert.Equal(9, ManifestJson.Parse(valid, "m").Iteration);

        Mutations(valid, valid.Length).Sample(file =>
        {
            try
            {
                ManifestJson.Parse(file, "m/manifest.json");
            }
            catch (CheckpointFormatException)
            {
            }
        }, iter: 3000);
    }
}
