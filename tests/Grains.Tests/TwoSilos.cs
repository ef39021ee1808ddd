using Checkpointing.TestSupport;

namespace Checkpointing.Grains.Tests;

[CollectionDefinition(nameof(TwoSilos))]
public sealed class TwoSilos : ICollectionFixture<TwoSiloCluster>;
