namespace Checkpointing.TrainerAgent;

/// <summary>The blob container a rank writes its shards into, bound from <c>Checkpointing:Store</c> by <c>AddCheckpointingCluster</c>.</summary>
public sealed class BlobCheckpointStoreOptions
{
    /// <summary>The Azure Storage connection string of the account (Azurite's <c>UseDevelopmentStorage=true</c> in development); or give <see cref="ServiceUri"/>.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>The account's blob service, https://ACCOUNT.blob.core.windows.net, reached as this process's identity (DefaultAzureCredential): no key.</summary>
    public string? ServiceUri { get; set; }

    /// <summary>The container the run's shards go to: the same one the silo's <c>Storage:CheckpointContainer</c> names.</summary>
    public string Container { get; set; } = "checkpoints";
}
