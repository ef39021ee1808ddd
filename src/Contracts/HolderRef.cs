namespace Checkpointing.Contracts;

/// <summary>A memory-tier holder: the endpoint agents reach it at (<c>http://host:port</c>) and the host it runs on, for placement.</summary>
[GenerateSerializer, Immutable]
public sealed record HolderRef(
    [property: Id(0)] string Endpoint,
    [property: Id(1)] string Host);
