using System.Text.Json.Serialization;
using Checkpointing.Storage;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>Storage requests by method, and the bytes of PUT bodies: a silo's (from <c>/stats</c>) or this process's (<see cref="StorageRequestCounts"/>).</summary>
public sealed record RequestCounts(
    [property: JsonPropertyName("put")] long Put,
    [property: JsonPropertyName("put_bytes")] long PutBytes,
    [property: JsonPropertyName("get")] long Get,
    [property: JsonPropertyName("head")] long Head,
    [property: JsonPropertyName("delete")] long Delete,
    [property: JsonPropertyName("other")] long Other)
{
    public static readonly RequestCounts Zero = new(0, 0, 0, 0, 0, 0);

    public long Total => Put + Get + Head + Delete + Other;

    public static RequestCounts Of(StorageRequestCounts counts) => new(counts.Puts, counts.PutBytes, counts.Gets, counts.Heads, counts.Deletes, counts.Others);

    public static RequestCounts operator +(RequestCounts a, RequestCounts b) =>
        new(a.Put + b.Put, a.PutBytes + b.PutBytes, a.Get + b.Get, a.Head + b.Head, a.Delete + b.Delete, a.Other + b.Other);

    public static RequestCounts operator -(RequestCounts a, RequestCounts b) =>
        new(a.Put - b.Put, a.PutBytes - b.PutBytes, a.Get - b.Get, a.Head - b.Head, a.Delete - b.Delete, a.Other - b.Other);
}
