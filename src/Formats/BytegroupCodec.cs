using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using ZstdSharp;

namespace Checkpointing.Formats;

/// <summary>
/// The <c>bytegroup</c> encoding of a tensor's bytes (docs/compression.md). Float bits are rotated left by one so that
/// the sign moves to the bottom and the exponent fills the top byte; the bytes of each element are then grouped into
/// planes (all top bytes, then all next bytes, …), and each plane is stored the shortest of three ways its byte histogram
/// points to: as fixed-width codes of its most frequent values (<see cref="PackedCodes"/>: exponents, which take few
/// values), zstd (a plane that is mostly one value: zeros of pruned or padded weights, small integers), or as it is (a
/// trained tensor's low mantissa bytes are close to random). Planes
/// are cut into frames of <see cref="DefaultFrameBytes"/> raw bytes, encoded and decoded in parallel, and each frame
/// decodes on its own.
/// </summary>
/// <remarks>
/// Layout, little-endian: "BGC1"; element size (1 byte); transform (1 byte: 0 none, 1 float rotation); 2 zero bytes; raw
/// length (int64); frame size in raw bytes (int32); frame count (int32); a table of frame count × element size uint32, the
/// stored length of each plane of each frame (low 30 bits) and how it is stored (top 2 bits: 0 zstd, 1 as it is, 2 packed
/// codes); then the planes in that order. A decoder trusts none of it: every length is checked against the destination before anything is read.
/// </remarks>
public static class BytegroupCodec
{
    /// <summary>The encoding's name, as manifests record it.</summary>
    public const string Name = "bytegroup";

    /// <summary>Raw bytes per frame: enough for zstd to find the planes' statistics, small enough to spread a tensor over every core.</summary>
    public const int DefaultFrameBytes = 1 << 20;

    /// <summary>
    /// The largest tensor encoded (1 GiB): the codec works on one contiguous buffer of the raw bytes and one of the encoded
    /// ones. A compressed save stores larger tensors as they are.
    /// </summary>
    public const long MaxTensorBytes = 1L << 30;

    /// <summary>zstd level 1 for the planes zstd gets (mostly one value): runs compress as well as at higher levels, and fastest.</summary>
    public const int DefaultLevel = 1;

    private const int HeaderBytes = 24;
    /// <summary>The smallest frame (4 KiB): bounds a frame table, and so what a decoder allocates for one, to a thousandth of the raw bytes per byte of element.</summary>
    public const int MinFrameBytes = 4096;
    private const int SampleBytes = 16 << 10;
    private const int MaxFrameBytes = 64 << 20;
    private const int MethodShift = 30;
    private const uint LengthMask = (1u << MethodShift) - 1;
    private const uint Zstd = 0, AsIs = 1, Packed = 2;
    /// <summary>A plane zstd gets: one value at least this often (runs, which fixed-width codes cannot shorten below a bit each).</summary>
    private const double ZstdDominance = 0.9;
    private const byte NoTransform = 0;
    private const byte FloatRotation = 1;
    private static ReadOnlySpan<byte> Magic => "BGC1"u8;

    [ThreadStatic] private static Compressor? t_compressor;
    [ThreadStatic] private static int t_compressorLevel;
    [ThreadStatic] private static Decompressor? t_decompressor;

    /// <summary>
    /// Encodes the bytes of a tensor of <paramref name="dtype"/>. The result may be (a few bytes per frame) longer than
    /// <paramref name="raw"/> when nothing compresses: a writer stores the raw bytes then.
    /// </summary>
    /// <exception cref="ArgumentException">the length is not a whole number of elements, or an option is out of range</exception>
    public static byte[] Encode(ReadOnlyMemory<byte> raw, TensorDType dtype, int level = DefaultLevel, int frameBytes = DefaultFrameBytes, int? maxParallel = null)
    {
        var elementSize = dtype.ElementSize();
        if (raw.Length % elementSize != 0) throw new ArgumentException($"{raw.Length} bytes are not a whole number of {dtype} elements.", nameof(raw));
        if (frameBytes < MinFrameBytes || frameBytes > MaxFrameBytes) throw new ArgumentOutOfRangeException(nameof(frameBytes), frameBytes, $"a frame holds {MinFrameBytes} to {MaxFrameBytes} bytes");
        frameBytes -= frameBytes % elementSize;
        var frameCount = (int)((raw.Length + (long)frameBytes - 1) / frameBytes);
        var transform = IsFloat(dtype) ? FloatRotation : NoTransform;
        // Each frame encodes into a pooled buffer of its raw size (an encoding is never longer), copied once into the result.
        var frames = new (byte[] Buffer, int Length)[frameCount];
        var lengths = new uint[frameCount * elementSize];
        try
        {
            Parallel(frameCount, maxParallel, frame =>
            {
                var slice = raw.Slice(frame * frameBytes, Math.Min(frameBytes, raw.Length - frame * frameBytes));
                var buffer = ArrayPool<byte>.Shared.Rent(slice.Length);
                frames[frame] = (buffer, EncodeFrame(slice.Span, elementSize, transform, level, lengths.AsSpan(frame * elementSize, elementSize), buffer));
            });

            var output = GC.AllocateUninitializedArray<byte>(checked(HeaderBytes + lengths.Length * 4 + frames.Sum(f => f.Length)));
            Magic.CopyTo(output);
            output[4] = (byte)elementSize;
            output[5] = transform;
            output.AsSpan(6, 2).Clear();
            BinaryPrimitives.WriteInt64LittleEndian(output.AsSpan(8), raw.Length);
            BinaryPrimitives.WriteInt32LittleEndian(output.AsSpan(16), frameBytes);
            BinaryPrimitives.WriteInt32LittleEndian(output.AsSpan(20), frameCount);
            for (var i = 0; i < lengths.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(output.AsSpan(HeaderBytes + i * 4), lengths[i]);
            var at = HeaderBytes + lengths.Length * 4;
            foreach (var (buffer, length) in frames)
            {
                buffer.AsSpan(0, length).CopyTo(output.AsSpan(at));
                at += length;
            }
            return output;
        }
        finally
        {
            foreach (var (buffer, _) in frames) if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Decodes <paramref name="encoded"/> into <paramref name="destination"/>, which must be exactly the tensor's raw length.</summary>
    /// <param name="encoded">the encoding, as <see cref="Encode"/> made it (or as anything else claims it)</param>
    /// <param name="dtype">the tensor's element type</param>
    /// <param name="destination">the tensor's memory, exactly its raw length</param>
    /// <param name="source">the shard or file the bytes came from, for the error</param>
    /// <param name="maxParallel">frames decoded at once; null: one per core</param>
    /// <exception cref="CheckpointFormatException">the bytes are not a valid encoding of a <paramref name="dtype"/> tensor of that length</exception>
    public static void Decode(ReadOnlyMemory<byte> encoded, TensorDType dtype, Memory<byte> destination, string source, int? maxParallel = null)
    {
        var elementSize = dtype.ElementSize();
        var header = encoded.Span;
        if (header.Length < HeaderBytes || !header[..4].SequenceEqual(Magic)) Fail(source, "it does not start with the BGC1 header");
        if (header[4] != elementSize) Fail(source, $"it encodes elements of {header[4]} bytes, {dtype} has {elementSize}");
        var transform = header[5];
        if (transform != (IsFloat(dtype) ? FloatRotation : NoTransform) || header[6] != 0 || header[7] != 0) Fail(source, $"unknown transform {transform} for {dtype}");
        var rawLength = BinaryPrimitives.ReadInt64LittleEndian(header[8..]);
        var frameBytes = BinaryPrimitives.ReadInt32LittleEndian(header[16..]);
        var frameCount = BinaryPrimitives.ReadInt32LittleEndian(header[20..]);
        if (rawLength != destination.Length) Fail(source, $"it holds {rawLength} raw bytes, the tensor has {destination.Length}");
        if (frameBytes < MinFrameBytes || frameBytes > MaxFrameBytes || frameBytes % elementSize != 0) Fail(source, $"frame size {frameBytes} is out of range");
        if (frameCount != (rawLength + frameBytes - 1) / frameBytes) Fail(source, $"{frameCount} frames of {frameBytes} bytes cannot hold {rawLength} bytes");
        var tableEnd = HeaderBytes + (long)frameCount * elementSize * 4;
        if (tableEnd > header.Length) Fail(source, "its frame table is cut short");

        // Where each plane starts, checked to add up to exactly the bytes there are.
        var starts = new long[frameCount * elementSize + 1];
        var methods = new uint[frameCount * elementSize];
        starts[0] = tableEnd;
        for (var i = 0; i < frameCount * elementSize; i++)
        {
            var entry = BinaryPrimitives.ReadUInt32LittleEndian(header[(HeaderBytes + i * 4)..]);
            var planeLength = (Math.Min(frameBytes, rawLength - (long)(i / elementSize) * frameBytes)) / elementSize;
            var (method, stored) = (entry >> MethodShift, entry & LengthMask);
            // As it is: exactly the plane. Coded: something, and less than the plane (the encoder keeps a coding only then).
            if (method > Packed || (method == AsIs ? stored != planeLength : stored == 0 || stored >= planeLength)) Fail(source, $"plane {i} has {stored} bytes stored by method {method} for {planeLength} raw bytes");
            methods[i] = method;
            starts[i + 1] = starts[i] + stored;
        }
        if (starts[^1] != header.Length) Fail(source, $"its planes hold {starts[^1] - tableEnd} bytes, {header.Length - tableEnd} follow the table");

        Parallel(frameCount, maxParallel, frame =>
        {
            var offset = (long)frame * frameBytes;
            var length = (int)Math.Min(frameBytes, rawLength - offset);
            var planes = encoded.Span;
            DecodeFrame(planes, starts.AsSpan(frame * elementSize, elementSize + 1), methods.AsSpan(frame * elementSize, elementSize), elementSize, transform,
                destination.Span.Slice((int)offset, length), source, frame);
        });
    }

    /// <summary>The longest valid encoding of <paramref name="rawLength"/> bytes of elements of <paramref name="elementSize"/> bytes: header, the table of the smallest frames, and every plane as it is.</summary>
    public static long MaxEncodedLength(long rawLength, int elementSize) => HeaderBytes + 4L * elementSize * ((rawLength + MinFrameBytes - 1) / MinFrameBytes) + rawLength;

    private static bool IsFloat(TensorDType dtype) => dtype is TensorDType.F16 or TensorDType.BF16 or TensorDType.F32 or TensorDType.F64;

    /// <summary>Encodes one frame's planes into <paramref name="output"/> (at least the frame's length); returns the bytes written.</summary>
    private static int EncodeFrame(ReadOnlySpan<byte> raw, int elementSize, byte transform, int level, Span<uint> lengths, Span<byte> output)
    {
        var planeLength = raw.Length / elementSize;
        var grouped = ArrayPool<byte>.Shared.Rent(raw.Length);
        var coded = ArrayPool<byte>.Shared.Rent(Math.Max(Compressor.GetCompressBound(planeLength), planeLength + 300));
        Span<int> histogram = stackalloc int[256];
        try
        {
            BytePlanes.Split(raw, grouped, elementSize, transform == FloatRotation);
            var written = 0;
            for (var plane = 0; plane < elementSize; plane++)
            {
                var bytes = grouped.AsSpan(plane * planeLength, planeLength);
                var (method, length) = (AsIs, planeLength);
                if (planeLength > 0 && !LooksIncompressible(bytes, histogram))
                {
                    PackedCodes.Histogram(bytes, histogram);
                    var (width, packedLength) = PackedCodes.Best(histogram, planeLength);
                    if (Max(histogram) >= ZstdDominance * planeLength && CompressorAt(level).Wrap(bytes, coded) is var zstd && zstd < Math.Min(packedLength, planeLength))
                        (method, length) = (Zstd, zstd);
                    else if (width > 0)
                        (method, length) = (Packed, PackedCodes.Encode(bytes, histogram, width, coded));
                }
                (method == AsIs ? bytes : coded.AsSpan(0, length)).CopyTo(output[written..]);
                written += length;
                lengths[plane] = (uint)length | method << MethodShift;
            }
            return written;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(grouped);
            ArrayPool<byte>.Shared.Return(coded);
        }
    }

    /// <summary>
    /// Whether the histogram of a sample from the start of a long plane says neither coding would shorten it by 3%: then the
    /// plane is stored as it is without counting the rest (a trained float's low mantissa bytes, random data).
    /// </summary>
    private static bool LooksIncompressible(ReadOnlySpan<byte> plane, Span<int> histogram)
    {
        if (plane.Length < 4 * SampleBytes) return false;
        PackedCodes.Histogram(plane[..SampleBytes], histogram);
        return Max(histogram) < ZstdDominance * SampleBytes && PackedCodes.Best(histogram, SampleBytes).Length > SampleBytes * 97L / 100;
    }

    private static int Max(ReadOnlySpan<int> histogram)
    {
        var max = 0;
        foreach (var count in histogram) max = Math.Max(max, count);
        return max;
    }

    private static void DecodeFrame(ReadOnlySpan<byte> encoded, ReadOnlySpan<long> starts, ReadOnlySpan<uint> methods, int elementSize, byte transform, Span<byte> destination,
        string source, int frame)
    {
        var planeLength = destination.Length / elementSize;
        var grouped = ArrayPool<byte>.Shared.Rent(destination.Length);
        try
        {
            for (var plane = 0; plane < elementSize; plane++)
            {
                var stored = encoded[(int)starts[plane]..(int)starts[plane + 1]];
                var into = grouped.AsSpan(plane * planeLength, planeLength);
                switch (methods[plane])
                {
                    case AsIs when elementSize == 2:
                        break; // merged straight from the stored bytes below
                    case AsIs:
                        stored.CopyTo(into);
                        break;                    case Packed:
                        PackedCodes.Decode(stored, into, source, $"frame {frame} plane {plane}");
                        break;
                    default:
                        int written;
                        try { written = DecompressorOfThread().Unwrap(stored, into); }
                        catch (ZstdException e) { throw new CheckpointFormatException(source, Name, $"frame {frame} plane {plane} does not decompress: {e.Message}", e); }
                        if (written != planeLength) Fail(source, $"frame {frame} plane {plane} decompresses to {written} bytes, not {planeLength}");
                        break;
                }
            }
            if (elementSize == 2)
            {
                // Two-byte elements (bf16, f16) merge from each plane where it is: a plane stored as it is is never copied first.
                var low = methods[0] == AsIs ? encoded[(int)starts[0]..(int)starts[1]] : grouped.AsSpan(0, planeLength);
                var high = methods[1] == AsIs ? encoded[(int)starts[1]..(int)starts[2]] : grouped.AsSpan(planeLength, planeLength);
                BytePlanes.Merge16(low, high, MemoryMarshal.Cast<byte, ushort>(destination), transform == FloatRotation);
            }
            else BytePlanes.Merge(grouped, destination, elementSize, transform == FloatRotation);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(grouped);
        }
    }

    /// <summary>One compressor per thread and level: a zstd context costs more to build than a frame takes to compress.</summary>
    private static Compressor CompressorAt(int level)
    {
        if (t_compressor is null || t_compressorLevel != level)
        {
            t_compressor?.Dispose();
            t_compressor = new Compressor(level);
            t_compressorLevel = level;
        }
        return t_compressor;
    }

    private static Decompressor DecompressorOfThread() => t_decompressor ??= new Decompressor();

    /// <summary>Runs <paramref name="work"/> for every frame, several at once; the first failure is thrown as itself.</summary>
    private static void Parallel(int count, int? maxParallel, Action<int> work)
    {
        if (count <= 1 || maxParallel == 1)
        {
            for (var i = 0; i < count; i++) work(i);
            return;
        }
        try
        {
            System.Threading.Tasks.Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = maxParallel ?? Environment.ProcessorCount }, work);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
    }

    private static void Fail(string source, string detail) => throw new CheckpointFormatException(source, Name, detail);
}
