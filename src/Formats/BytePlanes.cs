using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Checkpointing.Formats;

/// <summary>
/// Byte grouping for <see cref="BytegroupCodec"/>: byte k of element i goes to plane k at position i, and back. Floats are
/// rotated left by one bit first, so that the sign moves to the lowest bit and the exponent fills the top byte (for bf16 and
/// f32 exactly the exponent; for f16 its 5 bits and 3 of the mantissa). Two- and four-byte elements go 16 at a time
/// through 128-bit vectors; the rest, and the tails, one at a time.
/// </summary>
internal static class BytePlanes
{
    private const int Lanes = 16;

    /// <param name="raw">whole elements of <paramref name="elementSize"/> bytes, little-endian</param>
    /// <param name="planes">at least <paramref name="raw"/>'s length: plane k is bytes [k·n, (k+1)·n) for n elements</param>
    /// <param name="elementSize">bytes per element: 1, 2, 4 or 8</param>
    /// <param name="rotate">whether the elements are floats, rotated before they are split</param>
    public static void Split(ReadOnlySpan<byte> raw, Span<byte> planes, int elementSize, bool rotate)
    {
        var count = raw.Length / elementSize;
        switch (elementSize)
        {
            case 1:
                raw.CopyTo(planes);
                return;
            case 2:
                Split16(MemoryMarshal.Cast<byte, ushort>(raw), planes, count, rotate);
                return;
            case 4:
                Split32(MemoryMarshal.Cast<byte, uint>(raw), planes, count, rotate);
                return;
            default:
                var longs = MemoryMarshal.Cast<byte, ulong>(raw);
                for (var i = 0; i < count; i++)
                {
                    var value = rotate ? ulong.RotateLeft(longs[i], 1) : longs[i];
                    for (var b = 0; b < 8; b++) planes[b * count + i] = (byte)(value >> (8 * b));
                }
                return;
        }
    }

    /// <summary>The inverse of <see cref="Split"/>.</summary>
    public static void Merge(ReadOnlySpan<byte> planes, Span<byte> raw, int elementSize, bool rotate)
    {
        var count = raw.Length / elementSize;
        switch (elementSize)
        {
            case 1:
                planes[..count].CopyTo(raw);
                return;
            case 2:
                Merge16(planes[..count], planes.Slice(count, count), MemoryMarshal.Cast<byte, ushort>(raw), rotate);
                return;
            case 4:
                Merge32(planes, MemoryMarshal.Cast<byte, uint>(raw), count, rotate);
                return;
            default:
                var longs = MemoryMarshal.Cast<byte, ulong>(raw);
                for (var i = 0; i < count; i++)
                {
                    ulong value = 0;
                    for (var b = 0; b < 8; b++) value |= (ulong)planes[b * count + i] << (8 * b);
                    longs[i] = rotate ? ulong.RotateRight(value, 1) : value;
                }
                return;
        }
    }

    private static void Split16(ReadOnlySpan<ushort> values, Span<byte> planes, int count, bool rotate)
    {
        var low = planes[..count];
        var high = planes.Slice(count, count);
        var i = 0;
        var mask = Vector128.Create((ushort)0xFF);
        for (; i + Lanes <= count; i += Lanes)
        {
            var first = Vector128.Create(values.Slice(i, 8));
            var second = Vector128.Create(values.Slice(i + 8, 8));
            if (rotate) (first, second) = (RotateLeft(first), RotateLeft(second));
            Vector128.Narrow(first & mask, second & mask).CopyTo(low[i..]);
            Vector128.Narrow(Vector128.ShiftRightLogical(first, 8), Vector128.ShiftRightLogical(second, 8)).CopyTo(high[i..]);
        }
        for (; i < count; i++)
        {
            var value = rotate ? ushort.RotateLeft(values[i], 1) : values[i];
            low[i] = (byte)value;
            high[i] = (byte)(value >> 8);
        }
    }

    /// <summary>Two-byte elements from their two planes, wherever each lies.</summary>
    public static void Merge16(ReadOnlySpan<byte> low, ReadOnlySpan<byte> high, Span<ushort> values, bool rotate)
    {
        var count = values.Length;
        var i = 0;
        for (; i + Lanes <= count; i += Lanes)
        {
            var lows = Vector128.Create(low.Slice(i, Lanes));
            var highs = Vector128.Create(high.Slice(i, Lanes));
            var first = Vector128.WidenLower(lows) | Vector128.ShiftLeft(Vector128.WidenLower(highs), 8);
            var second = Vector128.WidenUpper(lows) | Vector128.ShiftLeft(Vector128.WidenUpper(highs), 8);
            if (rotate) (first, second) = (RotateRight(first), RotateRight(second));
            first.CopyTo(values[i..]);
            second.CopyTo(values[(i + 8)..]);
        }
        for (; i < count; i++)
        {
            var value = (ushort)(low[i] | high[i] << 8);
            values[i] = rotate ? ushort.RotateRight(value, 1) : value;
        }
    }

    private static void Split32(ReadOnlySpan<uint> values, Span<byte> planes, int count, bool rotate)
    {
        var i = 0;
        var mask = Vector128.Create(0xFFu);
        for (; i + Lanes <= count; i += Lanes)
        {
            var (w0, w1, w2, w3) = (Vector128.Create(values.Slice(i, 4)), Vector128.Create(values.Slice(i + 4, 4)), Vector128.Create(values.Slice(i + 8, 4)), Vector128.Create(values.Slice(i + 12, 4)));
            if (rotate) (w0, w1, w2, w3) = (RotateLeft(w0), RotateLeft(w1), RotateLeft(w2), RotateLeft(w3));
            for (var b = 0; b < 4; b++)
            {
                var shift = 8 * b;
                var first = Vector128.Narrow(Vector128.ShiftRightLogical(w0, shift) & mask, Vector128.ShiftRightLogical(w1, shift) & mask);
                var second = Vector128.Narrow(Vector128.ShiftRightLogical(w2, shift) & mask, Vector128.ShiftRightLogical(w3, shift) & mask);
                Vector128.Narrow(first, second).CopyTo(planes[(b * count + i)..]);
            }
        }
        for (; i < count; i++)
        {
            var value = rotate ? uint.RotateLeft(values[i], 1) : values[i];
            for (var b = 0; b < 4; b++) planes[b * count + i] = (byte)(value >> (8 * b));
        }
    }

    private static void Merge32(ReadOnlySpan<byte> planes, Span<uint> values, int count, bool rotate)
    {
        var i = 0;
        for (; i + Lanes <= count; i += Lanes)
        {
            Vector128<uint> w0 = default, w1 = default, w2 = default, w3 = default;
            for (var b = 0; b < 4; b++)
            {
                var bytes = Vector128.Create(planes.Slice(b * count + i, Lanes));
                var (lower, upper) = (Vector128.WidenLower(bytes), Vector128.WidenUpper(bytes));
                var shift = 8 * b;
                w0 |= Vector128.ShiftLeft(Vector128.WidenLower(lower), shift);
                w1 |= Vector128.ShiftLeft(Vector128.WidenUpper(lower), shift);
                w2 |= Vector128.ShiftLeft(Vector128.WidenLower(upper), shift);
                w3 |= Vector128.ShiftLeft(Vector128.WidenUpper(upper), shift);
            }
            if (rotate) (w0, w1, w2, w3) = (RotateRight(w0), RotateRight(w1), RotateRight(w2), RotateRight(w3));
            w0.CopyTo(values[i..]);
            w1.CopyTo(values[(i + 4)..]);
            w2.CopyTo(values[(i + 8)..]);
            w3.CopyTo(values[(i + 12)..]);
        }
        for (; i < count; i++)
        {
            var value = planes[i] | (uint)planes[count + i] << 8 | (uint)planes[2 * count + i] << 16 | (uint)planes[3 * count + i] << 24;
            values[i] = rotate ? uint.RotateRight(value, 1) : value;
        }
    }

    private static Vector128<ushort> RotateLeft(Vector128<ushort> v) => Vector128.ShiftLeft(v, 1) | Vector128.ShiftRightLogical(v, 15);

    private static Vector128<ushort> RotateRight(Vector128<ushort> v) => Vector128.ShiftRightLogical(v, 1) | Vector128.ShiftLeft(v, 15);

    private static Vector128<uint> RotateLeft(Vector128<uint> v) => Vector128.ShiftLeft(v, 1) | Vector128.ShiftRightLogical(v, 31);

    private static Vector128<uint> RotateRight(Vector128<uint> v) => Vector128.ShiftRightLogical(v, 1) | Vector128.ShiftLeft(v, 31);
}
