using System.Buffers.Binary;
using CsCheck;

namespace Checkpointing.Formats.Tests.Fuzz;

public enum MutationKind
{
    BitFlip,
    InsertBytes,
    DeleteBytes,
    Truncate,
    Splice,
    LengthField,
    DuplicateChunk,
}

/// <summary>
/// One edit of a seed file. Positions and sizes are raw numbers taken modulo the input, so that
/// CsCheck can shrink them and the same mutation applies to any seed.
/// </summary>
public sealed record Mutation(MutationKind Kind, int Position, int Other, int Value)
{
    /// <summary>Values that length fields and counts break on.</summary>
    private static readonly long[] Interesting = [0, 1, -1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, int.MaxValue, uint.MaxValue, long.MaxValue, long.MinValue, 1L << 28, 1L << 32];

    public static Gen<Mutation> Gen { get; } = CsCheck.Gen.Select(
        CsCheck.Gen.Int[0, Enum.GetValues<MutationKind>().Length - 1], CsCheck.Gen.Int[0, int.MaxValue], CsCheck.Gen.Int[0, int.MaxValue], CsCheck.Gen.Int[0, int.MaxValue],
        (kind, position, other, value) => new Mutation((MutationKind)kind, position, other, value));

    /// <param name="input">the bytes so far</param>
    /// <param name="donors">other seeds of the same format, for splicing</param>
    public byte[] Apply(byte[] input, IReadOnlyList<byte[]> donors)
    {
        var at = input.Length == 0 ? 0 : Position % input.Length;
        switch (Kind)
        {
            case MutationKind.BitFlip when input.Length > 0:
                var flipped = input.ToArray();
                flipped[at] ^= (byte)(1 << (Value % 8));
                return flipped;
            case MutationKind.InsertBytes:
                var insert = Enumerable.Repeat((byte)(Value & 0xff), 1 + Other % 16).ToArray();
                return [.. input.AsSpan(0, at), .. insert, .. input.AsSpan(at)];
            case MutationKind.DeleteBytes when input.Length > 0:
                var count = Math.Min(1 + Other % 16, input.Length - at);
                return [.. input.AsSpan(0, at), .. input.AsSpan(at + count)];
            case MutationKind.Truncate:
                return input[..at];
            case MutationKind.Splice:
                var donor = donors[Other % donors.Count];
                var from = donor.Length == 0 ? 0 : Value % donor.Length;
                return [.. input.AsSpan(0, at), .. donor.AsSpan(from)];
            case MutationKind.LengthField when input.Length > 0:
                return WithLengthField(input, at);
            case MutationKind.DuplicateChunk when input.Length > 0:
                var length = Math.Min(1 + Other % 64, input.Length - at);
                var target = Value % (input.Length + 1);
                return [.. input.AsSpan(0, target), .. input.AsSpan(at, length), .. input.AsSpan(target)];
            default:
                return input;
        }
    }

    /// <summary>Rewrites 1, 2, 4 or 8 little-endian bytes at <paramref name="at"/>: an interesting value, or the present one nudged.</summary>
    private byte[] WithLengthField(byte[] input, int at)
    {
        var width = 1 << (Other % 4);
        var bytes = input.ToArray();
        Span<byte> field = stackalloc byte[8];
        var available = Math.Min(width, bytes.Length - at);
        bytes.AsSpan(at, available).CopyTo(field);
        var present = BinaryPrimitives.ReadInt64LittleEndian(field);
        var choice = Value % (Interesting.Length + 4);
        var value = choice switch
        {
            _ when choice < Interesting.Length => Interesting[choice],
            _ when choice == Interesting.Length => present + 1,
            _ when choice == Interesting.Length + 1 => present - 1,
            _ when choice == Interesting.Length + 2 => present * 2,
            _ => present * 1000,
        };
        BinaryPrimitives.WriteInt64LittleEndian(field, value);
        field[..available].CopyTo(bytes.AsSpan(at));
        return bytes;
    }

    public override string ToString() => $"{Kind}({Position}, {Other}, {Value})";
}
