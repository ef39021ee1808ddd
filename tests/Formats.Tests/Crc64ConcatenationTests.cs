using System.IO.Hashing;
using Checkpointing.Formats;
using CsCheck;

namespace Checkpointing.Formats.Tests;

/// <summary>Pieces' CRC-64s joined give the whole's, for any bytes cut anywhere into any number of pieces.</summary>
public sealed class Crc64ConcatenationTests
{
    [Fact]
    public void Two_pieces_joined_give_the_crc_of_their_concatenation()
    {
        Gen.Select(Gen.Byte.Array[0, 3000], Gen.Byte.Array[0, 3000]).Sample((first, second) =>
            Crc64Concatenation.Join(Crc64.HashToUInt64(first), Crc64.HashToUInt64(second), second.Length) == Crc64.HashToUInt64([.. first, .. second]), iter: 500);
    }

    [Fact]
    public void Any_cuts_into_any_number_of_pieces_join_to_the_crc_of_the_whole()
    {
        Gen.Select(Gen.Byte.Array[0, 20_000], Gen.Int[0, 20_000].Array[0, 12]).Sample((bytes, cuts) =>
        {
            var bounds = cuts.Select(c => c % (bytes.Length + 1)).Append(0).Append(bytes.Length).Distinct().Order().ToArray();
            var pieces = bounds.Zip(bounds.Skip(1)).Select(b => (Crc64.HashToUInt64(bytes.AsSpan(b.First, b.Second - b.First)), (long)(b.Second - b.First)));
            return Crc64Concatenation.Join(pieces) == Crc64.HashToUInt64(bytes);
        }, iter: 300);
    }

    [Fact]
    public void A_long_zero_run_joins_without_reading_it()
    {
        // 3 GiB of zeros would take seconds to hash; its CRC is 0 (no initial value), so joining after it is x^(8n) mod P only.
        var head = "checkpoint"u8.ToArray();
        var tail = "ok"u8.ToArray();
        var zeros = new byte[1 << 20];
        var crcHeadAndZeros = Crc64Concatenation.Join(Crc64.HashToUInt64(head), 0, zeros.Length);
        Assert.Equal(Crc64.HashToUInt64([.. head, .. zeros]), crcHeadAndZeros);
        Assert.Equal(Crc64.HashToUInt64([.. head, .. zeros, .. tail]), Crc64Concatenation.Join(crcHeadAndZeros, Crc64.HashToUInt64(tail), tail.Length));
        Assert.NotEqual(0UL, Crc64Concatenation.Join(Crc64.HashToUInt64(head), 0, 3L << 30));
    }
}
