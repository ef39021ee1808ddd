using CsCheck;

namespace Checkpointing.Formats.Tests.Properties;

/// <summary>
/// The bytegroup encoding (docs/compression.md) is lossless for every dtype, length, frame size and content, never
/// grows a tensor by more than its table, and compresses what weights look like.
/// </summary>
public sealed class BytegroupCodecProperties
{
    /// <summary>Contents that exercise each plane decision: random bytes, weights-like floats, constants, and a mix.</summary>
    private static Gen<byte[]> Content(TensorDType dtype, int elements) => Gen.Int[0, 3].SelectMany(kind => kind switch
    {
        0 => Gen.Byte.Array[elements * dtype.ElementSize()],
        1 => Gen.Int[0, int.MaxValue].Select(seed => WeightsLike(dtype, elements, seed)),
        2 => Gen.Byte.Select(value => Enumerable.Repeat(value, elements * dtype.ElementSize()).ToArray()),
        _ => Gen.Int[0, int.MaxValue].Select(seed => Mixed(dtype, elements, seed)),
    });

    private static readonly Gen<(TensorDType DType, byte[] Raw, int FrameBytes, int Parallel)> Cases =
        from dtype in Gen.Enum<TensorDType>()
        from elements in Gen.Int[0, 20000]
        from raw in Content(dtype, elements)
        from frameBytes in Gen.Int[BytegroupCodec.MinFrameBytes, 4 * BytegroupCodec.MinFrameBytes]
        from parallel in Gen.Int[1, 3]
        select (dtype, raw, frameBytes, parallel);

    [Fact]
    public void Any_tensor_decodes_to_its_bytes_bit_for_bit_and_never_grows_by_more_than_its_frame_table()
    {
        Cases.Sample(c =>
        {
            var encoded = BytegroupCodec.Encode(c.Raw, c.DType, frameBytes: c.FrameBytes, maxParallel: c.Parallel);
            var decoded = new byte[c.Raw.Length];
            BytegroupCodec.Decode(encoded, c.DType, decoded, "property.bgz", maxParallel: c.Parallel);
            Assert.Equal(c.Raw, decoded);
            var frame = c.FrameBytes - c.FrameBytes % c.DType.ElementSize();
            var frames = (c.Raw.Length + frame - 1) / frame;
            Assert.True(encoded.Length <= c.Raw.Length + 24 + frames * c.DType.ElementSize() * 4, $"{encoded.Length} bytes for {c.Raw.Length}");
        }, iter: 300, print: c => $"{c.DType} {c.Raw.Length} bytes, frames of {c.FrameBytes}, parallel {c.Parallel}");
    }

    [Theory]
    [InlineData(TensorDType.BF16, 1.3)]
    [InlineData(TensorDType.F16, 1.1)]
    [InlineData(TensorDType.F32, 1.1)]
    public void Weights_like_floats_compress_and_random_bytes_do_not_grow_past_the_table(TensorDType dtype, double atLeast)
    {
        var weights = WeightsLike(dtype, 1 << 20, seed: 5);
        var ratio = (double)weights.Length / BytegroupCodec.Encode(weights, dtype).Length;
        Assert.True(ratio >= atLeast, $"{dtype} weights compressed {ratio:F3}x, expected at least {atLeast}x");

        var random = new byte[weights.Length];
        new Random(6).NextBytes(random);
        Assert.True(BytegroupCodec.Encode(random, dtype).Length <= random.Length + 24 + random.Length / BytegroupCodec.DefaultFrameBytes * dtype.ElementSize() * 4);
    }

    [Fact]
    public void A_blob_of_another_dtype_or_length_is_refused_naming_the_source()
    {
        var raw = WeightsLike(TensorDType.BF16, 4096, seed: 1);
        var encoded = BytegroupCodec.Encode(raw, TensorDType.BF16);
        var wrongType = Assert.Throws<CheckpointFormatException>(() => BytegroupCodec.Decode(encoded, TensorDType.F32, new byte[raw.Length], "a.ckz"));
        Assert.Equal("a.ckz", wrongType.Source);
        Assert.Contains("elements of 2 bytes", wrongType.Message);
        Assert.Throws<CheckpointFormatException>(() => BytegroupCodec.Decode(encoded, TensorDType.BF16, new byte[raw.Length - 2], "a.ckz"));
        Assert.Throws<CheckpointFormatException>(() => BytegroupCodec.Decode(encoded.AsMemory(0, encoded.Length - 1), TensorDType.BF16, new byte[raw.Length], "a.ckz"));
        Assert.Throws<ArgumentException>(() => BytegroupCodec.Encode(new byte[3], TensorDType.BF16));
    }

    /// <summary>
    /// Packed codes at every width decode to the plane bit for bit, whatever the mix of coded and escaped bytes and the plane's
    /// length: the vector path (widths up to 4, sixteen codes at a time) and the scalar path for the rest agree.
    /// </summary>
    [Fact]
    public void Packed_codes_of_every_width_decode_to_their_plane_with_escapes_anywhere()
    {
        var cases = from width in Gen.Int[1, 7]
                    from length in Gen.Int[0, 600]
                    from alphabet in Gen.Int[1, 256]
                    from seed in Gen.Int
                    select (width, length, alphabet, seed);
        cases.Sample(c =>
        {
            var random = new Random(c.seed);
            var plane = new byte[c.length];
            for (var i = 0; i < plane.Length; i++) plane[i] = (byte)(random.Next(c.alphabet) * 37 + 11);
            Span<int> histogram = stackalloc int[256];
            PackedCodes.Histogram(plane, histogram);
            var output = new byte[5 + 255 + plane.Length + plane.Length];
            var written = PackedCodes.Encode(plane, histogram, c.width, output);
            var decoded = new byte[plane.Length];
            PackedCodes.Decode(output.AsSpan(0, written), decoded, "codes", "plane");
            Assert.Equal(plane, decoded);
        }, iter: 2000, print: c => $"width {c.width}, {c.length} bytes of {c.alphabet} values, seed {c.seed}");
    }

    /// <summary>Normal values of a layer's scale in the dtype's bytes: what trained weights' exponents look like.</summary>
    internal static byte[] WeightsLike(TensorDType dtype, int elements, int seed)
    {
        var random = new Random(seed);
        var bytes = new byte[elements * dtype.ElementSize()];
        for (var i = 0; i < elements; i++)
        {
            var value = 0.02 * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
            Store(dtype, bytes, i, value, random);
        }
        return bytes;
    }

    /// <summary>Half weights-like, half zeros (pruned or padded rows), in runs.</summary>
    private static byte[] Mixed(TensorDType dtype, int elements, int seed)
    {
        var bytes = WeightsLike(dtype, elements, seed);
        var width = dtype.ElementSize();
        for (var i = 0; i < elements; i++)
        {
            if (i / 64 % 2 == 0) Array.Clear(bytes, i * width, width);
        }
        return bytes;
    }

    private static void Store(TensorDType dtype, byte[] bytes, int index, double value, Random random)
    {
        var at = bytes.AsSpan(index * dtype.ElementSize());
        switch (dtype)
        {
            case TensorDType.F64: BitConverter.TryWriteBytes(at, value); break;
            case TensorDType.F32: BitConverter.TryWriteBytes(at, (float)value); break;
            case TensorDType.F16: BitConverter.TryWriteBytes(at, (Half)value); break;
            case TensorDType.BF16: BitConverter.TryWriteBytes(at, (ushort)(BitConverter.SingleToUInt32Bits((float)value) >> 16)); break;
            default: random.NextBytes(at[..dtype.ElementSize()]); break; // integers: small values
        }
    }
}
