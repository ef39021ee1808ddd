using System.Buffers.Binary;
using System.Text;

namespace Checkpointing.Formats.Tests;

public class SafetensorsTests
{
    private static HostTensor Tensor(TensorDType dtype, params long[] shape)
    {
        var t = HostTensor.Allocate(dtype, shape);
        for (var i = 0; i < t.Data.Length; i++) t.Data[i] = (byte)(i * 31 + (int)dtype);
        return t;
    }

    private static byte[] Shard(params (string Key, HostTensor Tensor)[] tensors)
    {
        using var ms = new MemoryStream();
        SafetensorsShardWriter.Write(ms, tensors.Select(t => new NamedTensor(t.Key, t.Tensor)).ToList());
        return ms.ToArray();
    }

    private static Dictionary<string, HostTensor> ReadAll(byte[] file, string? checksum = null)
    {
        var result = new Dictionary<string, HostTensor>();
        SafetensorsShardReader.Read(new MemoryStream(file), "shard.safetensors", file.Length, checksum, e =>
        {
            var t = HostTensor.Allocate(e.DType, e.Shape);
            result[e.Key] = t;
            return t;
        });
        return result;
    }

    /// <summary>Builds a file by hand from a header JSON and a data section, to feed the parser malformed input.</summary>
    private static byte[] Raw(string headerJson, int dataLength)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        var file = new byte[8 + header.Length + dataLength];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)header.Length);
        header.CopyTo(file, 8);
        return file;
    }

    [Fact]
    public void Every_dtype_round_trips_with_aligned_contiguous_layout()
    {
        var tensors = Enum.GetValues<TensorDType>().Select(d => ($"t.{d}", Tensor(d, 3, 5))).ToArray();
        var file = Shard(tensors);

        var header = SafetensorsHeader.Read(new MemoryStream(file), file.Length, "x");
        Assert.Equal(0, header.DataStart % 8);
        Assert.Equal(tensors.Length, header.Entries.Count);
        foreach (var e in header.Entries) Assert.Equal(0, e.Begin % e.DType.ElementSize());

        var read = ReadAll(file);
        foreach (var (key, t) in tensors)
        {
            Assert.Equal(t.DType, read[key].DType);
            Assert.Equal(t.Shape, read[key].Shape);
            Assert.Equal(t.Data, read[key].Data);
        }
    }

    [Fact]
    public void Scalars_and_empty_tensors_are_stored()
    {
        var file = Shard(("scalar", Tensor(TensorDType.F64)), ("empty", Tensor(TensorDType.F32, 0, 4)));
        var read = ReadAll(file);
        Assert.Empty(read["scalar"].Shape);
        Assert.Equal(8, read["scalar"].Data.Length);
        Assert.Equal([0L, 4L], read["empty"].Shape);
    }

    [Fact]
    public void Header_length_beyond_the_limit_is_refused_before_allocating()
    {
        var file = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(file, ulong.MaxValue / 2);
        var e = Assert.Throws<CheckpointFormatException>(() => SafetensorsHeader.Read(new MemoryStream(file), file.Length, "s"));
        Assert.Equal("header length", e.Check);
        Assert.Contains("exceeds the limit", e.Message);
    }

    [Fact]
    public void Header_longer_than_the_file_is_reported_as_truncated()
    {
        var file = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(file, 100);
        var e = Assert.Throws<CheckpointFormatException>(() => SafetensorsHeader.Read(new MemoryStream(file), file.Length, "s"));
        Assert.Contains("does not fit", e.Message);
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "data offsets", "overlaps")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}""", 16, "data offsets", "hole")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4, "data offsets", "truncated")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 12, "data offsets", "trailing")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "dtype x shape", "12 bytes")]
    [InlineData("""{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}""", 8, "dtype", "unknown dtype 'Q4'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8, "header", "non-negative")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", 8, "data offsets", "begin <= end")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8, "header", "duplicate key 'a'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2]}}""", 8, "header", "needs dtype, shape and data_offsets")]
    [InlineData("""[1,2]""", 0, "header JSON", "expected an object")]
    [InlineData("""{"a":""", 0, "header JSON", "")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}}""", 8, "header", "unknown field 'extra'")]
    public void Malformed_headers_fail_with_a_specific_check(string header, int dataLength, string check, string detail)
    {
        var file = Raw(header, dataLength);
        var e = Assert.Throws<CheckpointFormatException>(() => SafetensorsHeader.Read(new MemoryStream(file), file.Length, "bad.safetensors"));
        Assert.Equal(check, e.Check);
        Assert.Contains(detail, e.Message);
        Assert.StartsWith("bad.safetensors: ", e.Message);
    }

    /// <summary>
    /// Issue 8, data loss 4: an empty tensor shares its offset with the next tensor. With more than 16
    /// entries the old start-only, unstable sort could put the non-empty one first and report an overlap.
    /// </summary>
    [Theory]
    [InlineData(17)]
    [InlineData(40)]
    [InlineData(300)]
    public void Shards_with_empty_tensors_among_many_read_back(int count)
    {
        for (var emptyAt = 0; emptyAt < count; emptyAt += Math.Max(1, count / 20))
        {
            var tensors = Enumerable.Range(0, count)
                .Select(i => ($"t{i:D3}", i == emptyAt || i % 7 == 3 ? Tensor(TensorDType.F32, 0, 3) : Tensor(TensorDType.F32, 2)))
                .ToArray();
            var read = ReadAll(Shard(tensors));
            Assert.Equal(count, read.Count);
            foreach (var (key, t) in tensors) Assert.Equal(t.Data, read[key].Data);
        }
    }

    [Fact]
    public void Several_empty_tensors_at_one_offset_are_accepted_in_any_header_order()
    {
        // The official library sorts by (begin, end): empties at an offset come before the tensor starting there.
        const string Empty8 = "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}";
        var entries = Enumerable.Range(0, 20).Select(i => "\"e" + i + Empty8)
            .Prepend("\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}")
            .Append("\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}")
            .Append("\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,16]}");
        var file = Raw("{" + string.Join(",", entries) + "}", 16);
        var header = SafetensorsHeader.Read(new MemoryStream(file), file.Length, "s");
        Assert.Equal(23, header.Entries.Count);
        Assert.Equal(16, header.DataLength);
        Assert.Equal("a", header.Entries[0].Key);
        Assert.Equal(["e0", "e1", "e10"], header.Entries.Skip(1).Take(3).Select(e => e.Key));
        Assert.Equal("b", header.Entries[^2].Key);
        Assert.Equal("z", header.Entries[^1].Key);
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}}""", "tensor 'a' has field 'dtype' twice")]
    [InlineData("""{"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "__metadata__ has key 'k' twice")]
    public void Duplicated_fields_inside_the_header_are_refused(string header, string detail)
    {
        var file = Raw(header, 8);
        var e = Assert.Throws<CheckpointFormatException>(() => SafetensorsHeader.Read(new MemoryStream(file), file.Length, "dup.safetensors"));
        Assert.Contains(detail, e.Message);
        Assert.StartsWith("dup.safetensors: ", e.Message);
    }

    [Fact]
    public void A_tensor_with_more_dimensions_than_the_limit_is_refused()
    {
        var shape = string.Join(",", Enumerable.Repeat(1, SafetensorsHeader.MaxRank)) + ",2";
        var file = Raw($$$"""{"a":{"dtype":"F32","shape":[{{{shape}}}],"data_offsets":[0,8]}}""", 8);
        var e = Assert.Throws<CheckpointFormatException>(() => SafetensorsHeader.Read(new MemoryStream(file), file.Length, "deep.safetensors"));
        Assert.Equal("shape", e.Check);
        Assert.Contains($"limit of {SafetensorsHeader.MaxRank}", e.Message);
    }

    [Fact]
    public void Header_json_nested_beyond_the_format_is_refused()
    {
        var file = Raw("""{"__metadata__":{"a":[[[[[[[[[[1]]]]]]]]]]}}""", 0);
        var e = Assert.Throws<CheckpointFormatException>(() => SafetensorsHeader.Read(new MemoryStream(file), file.Length, "nest.safetensors"));
        Assert.Equal("header JSON", e.Check);
        Assert.Contains($"{SafetensorsHeader.MaxJsonDepth}", e.Message);
    }

    [Theory]
    [InlineData("key")]
    [InlineData("metadata")]
    [InlineData("dtype")]
    public void Invalid_utf8_in_the_header_is_a_format_error(string where)
    {
        var header = where switch
        {
            "key" => """{"aXb":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""",
            "metadata" => """{"__metadata__":{"k":"vXw"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""",
            _ => """{"a":{"dtype":"F3X","shape":[2],"data_offsets":[0,8]}}""",
        };
        var file = Raw(header, 8);
        var at = Array.IndexOf(file, (byte)'X');
        file[at] = 0xC3; // a lead byte without its continuation
        var e = Assert.Throws<CheckpointFormatException>(() => SafetensorsHeader.Read(new MemoryStream(file), file.Length, "utf8.safetensors"));
        Assert.StartsWith("utf8.safetensors: ", e.Message);
    }

    /// <summary>The README names the variant: CRC-64/ECMA-182 (poly 0x42F0E1EBA9EA3693, not reflected, init and xorout 0).</summary>
    [Fact]
    public void Shard_checksums_are_crc64_ecma_182()
    {
        var hashing = new ChecksummingWriteStream(Stream.Null);
        hashing.Write("123456789"u8);
        Assert.Equal("crc64:6c40df5f0b497347", hashing.Checksum); // the catalogue's check value for CRC-64/ECMA-182
    }

    [Fact]
    public void Flipped_data_byte_fails_the_checksum()
    {
        var file = Shard(("w", Tensor(TensorDType.F32, 64)));
        var hashing = new ChecksummingWriteStream(Stream.Null);
        hashing.Write(file);
        file[^5] ^= 0x40;
        var e = Assert.Throws<CheckpointFormatException>(() => ReadAll(file, hashing.Checksum));
        Assert.Equal("checksum", e.Check);
        Assert.Contains(hashing.Checksum, e.Message);
    }

    [Fact]
    public void Flipped_header_byte_is_reported_as_checksum_mismatch()
    {
        var file = Shard(("w", Tensor(TensorDType.F32, 64)));
        var hashing = new ChecksummingWriteStream(Stream.Null);
        hashing.Write(file);
        file[10] = (byte)'[';
        var e = Assert.Throws<CheckpointFormatException>(() => ReadAll(file, hashing.Checksum));
        Assert.Equal("checksum", e.Check);
    }

    [Fact]
    public void Truncated_data_is_reported_as_length_failure()
    {
        var file = Shard(("w", Tensor(TensorDType.F32, 64)), ("b", Tensor(TensorDType.I64, 8)));
        var truncated = file[..^20];
        var e = Assert.Throws<CheckpointFormatException>(() => SafetensorsShardReader.Read(new MemoryStream(truncated), "s", file.Length, null, _ => null));
        Assert.Equal("length", e.Check);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void A_tensor_source_writing_the_wrong_length_is_caught()
    {
        var liar = new LyingSource();
        var e = Assert.Throws<InvalidOperationException>(() => SafetensorsShardWriter.Write(new MemoryStream(), [new NamedTensor("x", liar)]));
        Assert.Contains("wrote 3 bytes, expected 8", e.Message);
    }

    private sealed class LyingSource : ITensorSource
    {
        public TensorDType DType => TensorDType.F32;
        public long[] Shape => [2];
        public void WriteTo(Stream destination) => destination.Write([1, 2, 3]);
    }
}
