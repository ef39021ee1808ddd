using System.Text.Json.Serialization;

namespace Checkpointing.Benchmarks.Throughput;

public sealed record SiloStats(
    [property: JsonPropertyName("state_writes")] long StateWrites,
    [property: JsonPropertyName("state_bytes_written")] long StateBytesWritten,
    [property: JsonPropertyName("jit_methods")] long JitMethods);
