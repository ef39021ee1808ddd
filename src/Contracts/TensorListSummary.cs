using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Checkpointing.Contracts;

/// <summary>
/// A fixed-size stand-in for a rank's tensor list (key and byte size of each tensor): its count,
/// total bytes and a SHA-256 over the list in key order. Ranks send it instead of the list; equal
/// summaries mean every rank computes the same split.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record TensorListSummary(
    [property: Id(0)] int Count,
    [property: Id(1)] long TotalBytes,
    [property: Id(2)] string Sha256)
{
    /// <summary>Refuses a list naming a tensor twice or giving one a negative size.</summary>
    public static TensorListSummary Of(IEnumerable<TensorSize> tensors)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> number = stackalloc byte[8];
        int count = 0;
        long total = 0;
        string? previous = null;
        foreach (var t in tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            if (previous == t.Key) throw new ArgumentException($"Tensor '{t.Key}' is listed twice.", nameof(tensors));
            if (t.Bytes < 0) throw new ArgumentException($"Tensor '{t.Key}' has a negative size.", nameof(tensors));
            previous = t.Key;
            var key = Encoding.UTF8.GetBytes(t.Key);
            BinaryPrimitives.WriteInt32LittleEndian(number, key.Length);
            hash.AppendData(number[..4]);
            hash.AppendData(key);
            BinaryPrimitives.WriteInt64LittleEndian(number, t.Bytes);
            hash.AppendData(number);
            count++;
            total += t.Bytes;
        }
        return new TensorListSummary(count, total, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }
}
