using System.Text.Json.Serialization;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>A silo's <c>/stats</c>: grain-state writes, storage requests of its blob clients, and JIT activity.</summary>
public sealed record SiloStats(
    [property: JsonPropertyName("state_writes")] long StateWrites,
    [property: JsonPropertyName("state_bytes_written")] long StateBytesWritten,
    [property: JsonPropertyName("jit_methods")] long JitMethods,
    [property: JsonPropertyName("storage_requests")] RequestCounts StorageRequests)
{
    /// <summary>The sum of two silos' figures.</summary>
    public static SiloStats operator +(SiloStats a, SiloStats b) =>
        new(a.StateWrites + b.StateWrites, a.StateBytesWritten + b.StateBytesWritten, a.JitMethods + b.JitMethods, a.StorageRequests + b.StorageRequests);

    public static readonly SiloStats Zero = new(0, 0, 0, RequestCounts.Zero);
}
