namespace Checkpointing.Contracts;

/// <summary>Signed access to one object of a run's checkpoints, as the run grain hands it to a rank that holds no storage credential.</summary>
/// <param name="Key">The object's store key.</param>
/// <param name="Access">The URI that reads or writes exactly that object (a blob SAS URI).</param>
/// <param name="ExpiresOn">When the access ends; ask the run grain again after that.</param>
[GenerateSerializer, Immutable]
public sealed record StoreGrant([property: Id(0)] string Key, [property: Id(1)] Uri Access, [property: Id(2)] DateTimeOffset ExpiresOn);
