namespace Checkpointing.Formats;

/// <summary>
/// Joins CRC-64s of consecutive pieces into the CRC-64 of the whole, as <see cref="System.IO.Hashing.Crc64"/> computes it
/// (ECMA-182: polynomial 0x42F0E1EBA9EA3693, not reflected, no initial or final XOR). That CRC is linear, so
/// crc(A ‖ B) = crc(A) · x^(8·|B|) mod P ⊕ crc(B): pieces read and checked on different cores in any order give the file's
/// checksum without a second pass over its bytes.
/// </summary>
public static class Crc64Concatenation
{
    private const ulong Polynomial = 0x42F0E1EBA9EA3693;

    /// <summary>The CRC-64 of the bytes whose first part has <paramref name="first"/> and whose second part, <paramref name="secondLength"/> bytes long, has <paramref name="second"/>.</summary>
    public static ulong Join(ulong first, ulong second, long secondLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(secondLength);
        return Multiply(first, PowerOfX(8 * (ulong)secondLength)) ^ second;
    }

    /// <summary>The CRC-64 of pieces that follow each other in order, each given by its CRC and its length.</summary>
    public static ulong Join(IEnumerable<(ulong Crc, long Length)> pieces)
    {
        ulong whole = 0;
        foreach (var (crc, length) in pieces) whole = Join(whole, crc, length);
        return whole;
    }

    /// <summary>x^<paramref name="exponent"/> mod P, by squaring (a few hundred multiplications for any length a file has).</summary>
    private static ulong PowerOfX(ulong exponent)
    {
        ulong result = 1, square = 2; // x^0 and x^1
        for (; exponent > 0; exponent >>= 1)
        {
            if ((exponent & 1) != 0) result = Multiply(result, square);
            square = Multiply(square, square);
        }
        return result;
    }

    /// <summary>a · b mod P over GF(2), bit 63 the coefficient of x^63 (Horner's rule over b's bits, highest first).</summary>
    private static ulong Multiply(ulong a, ulong b)
    {
        ulong product = 0;
        for (var bit = 63; bit >= 0; bit--)
        {
            product = (product & (1UL << 63)) != 0 ? (product << 1) ^ Polynomial : product << 1;
            if (((b >> bit) & 1) != 0) product ^= a;
        }
        return product;
    }
}
