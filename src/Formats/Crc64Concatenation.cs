namespace Checkpointing.Formats;

/// <summary>
/// The CRC-64 of a concatenation from the CRC-64s of its parts, so that the ranges of a shard can be hashed as they arrive
/// (in parallel, while their bytes are still in cache) and still be checked against the whole shard's checksum.
/// <see cref="System.IO.Hashing.Crc64"/> is CRC-64/ECMA-182 with initial value 0, no reflection and no final XOR, so it is
/// linear over GF(2): crc(A‖B) = crc(A)·x^(8|B|) mod P ⊕ crc(B).
/// </summary>
public static class Crc64Concatenation
{
    /// <summary>The ECMA-182 polynomial without its x^64 term.</summary>
    private const ulong Polynomial = 0x42F0E1EBA9EA3693;

    /// <summary>crc(A‖B) from crc(A), crc(B) and the length of B.</summary>
    public static ulong Append(ulong crcOfFirst, ulong crcOfSecond, long lengthOfSecond)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(lengthOfSecond);
        return MultiplyModP(crcOfFirst, PowerOfXModP(8 * lengthOfSecond)) ^ crcOfSecond;
    }

    /// <summary>a·b mod P, bit i holding the coefficient of x^i (Horner's rule over b's bits, highest first).</summary>
    private static ulong MultiplyModP(ulong a, ulong b)
    {
        ulong product = 0;
        for (var bit = 63; bit >= 0; bit--)
        {
            product = (product << 1) ^ ((product >> 63) * Polynomial); // product·x, reduced: x^64 ≡ Polynomial
            if (((b >> bit) & 1) != 0) product ^= a;
        }
        return product;
    }

    /// <summary>x^n mod P by squaring: about 2·log2(n) multiplications.</summary>
    private static ulong PowerOfXModP(long n)
    {
        ulong result = 1, square = 2; // x^0, x^1
        for (; n > 0; n >>= 1)
        {
            if ((n & 1) != 0) result = MultiplyModP(result, square);
            square = MultiplyModP(square, square);
        }
        return result;
    }
}
