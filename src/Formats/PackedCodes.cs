using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Checkpointing.Formats;

/// <summary>
/// A plane of <see cref="BytegroupCodec"/> as fixed-width codes: the 2^w − 1 most frequent byte values get codes 0 … 2^w − 2,
/// every other byte is the escape code 2^w − 1 and follows, as it is, after the codes. Trained weights' exponents take a
/// handful of values (a few octaves around the layer's scale), so 3 or 4 bits carry almost all of them; coding them is
/// one table lookup and a shift per byte, several times faster than an entropy coder for a little less ratio.
/// </summary>
/// <remarks>Layout: w (1 byte, 1 to 7); the 2^w − 1 byte values by code; escape count (uint32); the codes, w bits each, least
/// significant bits first, so that each group of eight fills w bytes; the escaped bytes in order.</remarks>
internal static class PackedCodes
{
    private const int MaxWidth = 7;

    /// <summary>The width whose coding of a plane with this histogram is shortest, and that length; (0, long.MaxValue) when none beats the plane's own length.</summary>
    public static (int Width, long Length) Best(ReadOnlySpan<int> histogram, int planeLength)
    {
        Span<int> counts = stackalloc int[256];
        histogram.CopyTo(counts);
        counts.Sort((a, b) => b.CompareTo(a));
        var (best, bestLength) = (0, (long)planeLength);
        long covered = 0;
        var symbols = 0;
        for (var width = 1; width <= MaxWidth; width++)
        {
            var codes = (1 << width) - 1;
            for (; symbols < codes; symbols++) covered += counts[symbols];
            var length = Length(width, planeLength, planeLength - covered);
            if (length < bestLength) (best, bestLength) = (width, length);
        }
        return best == 0 ? (0, long.MaxValue) : (best, bestLength);
    }

    private static long Length(int width, long planeLength, long escapes) => 1 + ((1 << width) - 1) + 4 + (planeLength * width + 7) / 8 + escapes;

    /// <summary>Writes the coding of <paramref name="plane"/> at <paramref name="width"/> bits into <paramref name="output"/> (at least the length <see cref="Best"/> gave); returns its length.</summary>
    public static int Encode(ReadOnlySpan<byte> plane, ReadOnlySpan<int> histogram, int width, Span<byte> output)
    {
        var codes = (1 << width) - 1;
        var order = new byte[256];
        for (var value = 0; value < 256; value++) order[value] = (byte)value;
        var counts = histogram.ToArray();
        Array.Sort(counts, order, Comparer<int>.Create((a, b) => b.CompareTo(a)));
        Span<byte> codeOf = stackalloc byte[256];
        codeOf.Fill((byte)codes);
        output[0] = (byte)width;
        for (var code = 0; code < codes; code++)
        {
            output[1 + code] = order[code];
            codeOf[order[code]] = (byte)code;
        }
        var escapes = plane.Length;
        for (var code = 0; code < codes; code++) escapes -= counts[code];
        BinaryPrimitives.WriteInt32LittleEndian(output[(1 + codes)..], escapes);
        var packed = output.Slice(5 + codes, (int)(((long)plane.Length * width + 7) / 8));
        var escaped = output.Slice(5 + codes + packed.Length, escapes);
        // Eight codes at a time fill exactly w bytes: no bit position to carry from one group to the next.
        int at = 0, escapedAt = 0, i = 0;
        for (; i < plane.Length; i += 8)
        {
            var inGroup = Math.Min(8, plane.Length - i);
            ulong group = 0;
            for (var k = 0; k < inGroup; k++)
            {
                var value = plane[i + k];
                var code = codeOf[value];
                if (code == codes) escaped[escapedAt++] = value;
                group |= (ulong)code << (k * width);
            }
            var bytes = inGroup == 8 ? width : (inGroup * width + 7) / 8;
            if (bytes == width && at + 8 <= packed.Length) BinaryPrimitives.WriteUInt64LittleEndian(packed[at..], group); // the spill is overwritten by the next group
            else for (var b = 0; b < bytes; b++) packed[at + b] = (byte)(group >> (8 * b));
            at += bytes;
        }
        return 5 + codes + packed.Length + escapes;
    }

    /// <summary>Decodes a coding into <paramref name="plane"/>, whose length is the plane's; refuses one that does not fit it exactly.</summary>
    /// <exception cref="CheckpointFormatException">the coding is malformed</exception>
    public static void Decode(ReadOnlySpan<byte> stored, Span<byte> plane, string source, string where)
    {
        if (stored.Length < 1 || stored[0] is < 1 or > MaxWidth) throw Bad(source, where, $"code width {(stored.Length < 1 ? "missing" : stored[0])}");
        var width = stored[0];
        var codes = (1 << width) - 1;
        if (stored.Length < 5 + codes) throw Bad(source, where, "its code table is cut short");
        var symbols = stored.Slice(1, codes);
        var escapes = BinaryPrimitives.ReadInt32LittleEndian(stored[(1 + codes)..]);
        var packedLength = ((long)plane.Length * width + 7) / 8;
        if (escapes < 0 || escapes > plane.Length || stored.Length != 5 + codes + packedLength + escapes)
            throw Bad(source, where, $"{stored.Length} bytes cannot hold {plane.Length} codes of {width} bits and {escapes} escaped bytes");
        var packed = stored.Slice(5 + codes, (int)packedLength);
        var escaped = stored.Slice(5 + codes + (int)packedLength, escapes);
        var mask = (ulong)codes;
        int start = 0, at = 0, escapedAt = 0;
        if (width <= 4 && FastBitDeposit && Ssse3.IsSupported) (start, at) = DecodeVectorized(packed, symbols, width, escaped, ref escapedAt, plane, source, where);
        for (var i = start; i < plane.Length; i += 8)
        {
            var inGroup = Math.Min(8, plane.Length - i);
            var bytes = inGroup == 8 ? width : (inGroup * width + 7) / 8;
            ulong group = 0;
            if (at + 8 <= packed.Length) group = BinaryPrimitives.ReadUInt64LittleEndian(packed[at..]);
            else for (var b = 0; b < bytes; b++) group |= (ulong)packed[at + b] << (8 * b);
            at += bytes;
            for (var k = 0; k < inGroup; k++)
            {
                var code = (int)((group >> (k * width)) & mask);
                if (code != codes) plane[i + k] = symbols[code];
                else if (escapedAt < escaped.Length) plane[i + k] = escaped[escapedAt++];
                else throw Bad(source, where, "more escape codes than escaped bytes");
            }
        }
        if (escapedAt != escapes) throw Bad(source, where, $"{escapes} escaped bytes recorded, {escapedAt} escape codes");
    }

    /// <summary>
    /// Whether PDEP is fast here: it is on every Intel CPU with BMI2 and on AMD from Zen 3 (family 19h) on, but Zen 1 and 2 run it
    /// in microcode at tens of cycles per call, which would make the vector path several times slower than the scalar loop.
    /// </summary>
    private static readonly bool FastBitDeposit = Bmi2.X64.IsSupported && !IsAmdBeforeZen3();

    private static bool IsAmdBeforeZen3()
    {
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        var isAmd = ebx == 0x68747541 && edx == 0x69746E65 && ecx == 0x444D4163; // "Auth" "enti" "cAMD"
        var signature = X86Base.CpuId(1, 0).Eax;
        var family = (signature >> 8) & 0xF;
        if (family == 0xF) family += (signature >> 20) & 0xFF;
        return isAmd && family < 0x19;
    }

    /// <summary>
    /// Codes of at most 4 bits, sixteen at a time: PDEP spreads each group of eight codes into eight bytes, and one byte shuffle
    /// looks all sixteen up (the 16-entry table fits a vector). A block with an escape code takes its escaped bytes in order.
    /// Returns how far it got (codes and packed bytes), always a whole number of groups.
    /// </summary>
    private static (int Codes, int Packed) DecodeVectorized(ReadOnlySpan<byte> packed, ReadOnlySpan<byte> symbols, int width, ReadOnlySpan<byte> escaped, ref int escapedAt, Span<byte> plane, string source, string where)
    {
        var codes = (1 << width) - 1;
        Span<byte> entries = stackalloc byte[16];
        symbols.CopyTo(entries);
        var table = Vector128.Create((ReadOnlySpan<byte>)entries);
        var escape = Vector128.Create((byte)codes);
        var spread = 0x0101010101010101UL * (ulong)codes; // each byte's low w bits
        int i = 0, at = 0;
        for (; i + 16 <= plane.Length && at + width + 8 <= packed.Length; i += 16, at += 2 * width)
        {
            var low = Bmi2.X64.ParallelBitDeposit(BinaryPrimitives.ReadUInt64LittleEndian(packed[at..]), spread);
            var high = Bmi2.X64.ParallelBitDeposit(BinaryPrimitives.ReadUInt64LittleEndian(packed[(at + width)..]), spread);
            var indices = Vector128.Create(low, high).AsByte();
            Ssse3.Shuffle(table, indices).CopyTo(plane[i..]);
            var escapes = Vector128.Equals(indices, escape).ExtractMostSignificantBits();
            for (; escapes != 0; escapes &= escapes - 1)
            {
                if (escapedAt == escaped.Length) throw Bad(source, where, "more escape codes than escaped bytes");
                plane[i + BitOperations.TrailingZeroCount(escapes)] = escaped[escapedAt++];
            }
        }
        return (i, at);
    }

    /// <summary>Counts of each byte value in <paramref name="plane"/>, four counters per value to keep consecutive equal bytes from waiting on each other.</summary>
    public static void Histogram(ReadOnlySpan<byte> plane, Span<int> histogram)
    {
        Span<int> counts = stackalloc int[4 * 256];
        var i = 0;
        for (; i + 4 <= plane.Length; i += 4)
        {
            counts[plane[i]]++;
            counts[256 + plane[i + 1]]++;
            counts[512 + plane[i + 2]]++;
            counts[768 + plane[i + 3]]++;
        }
        for (; i < plane.Length; i++) counts[plane[i]]++;
        for (var value = 0; value < 256; value++) histogram[value] = counts[value] + counts[256 + value] + counts[512 + value] + counts[768 + value];
    }

    private static CheckpointFormatException Bad(string source, string where, string detail) => new(source, BytegroupCodec.Name, $"{where}: {detail}");
}
