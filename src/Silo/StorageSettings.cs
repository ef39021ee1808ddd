namespace Checkpointing.Silo;

public sealed class StorageSettings
{
    public const string Section = "Storage";

    /// <summary>Azure Storage connection string (Azurite in dev) for membership, grain state and, with Checkpoints=AzureBlob, shards.</summary>
    public string ConnectionString { get; set; } = AzuriteConnectionString;

    /// <summary>
    /// The account's blob service, https://ACCOUNT.blob.core.windows.net: when set, the silo reaches storage as its
    /// identity (DefaultAzureCredential: workload identity, managed identity, ...) and <see cref="ConnectionString"/> is not used.
    /// </summary>
    public string? BlobServiceUri { get; set; }

    /// <summary>The account's table service (membership and reminders) when <see cref="BlobServiceUri"/> is set.</summary>
    public string? TableServiceUri { get; set; }

    /// <summary>True when storage is reached as the silo's identity rather than with a connection string.</summary>
    public bool UsesIdentity => !string.IsNullOrWhiteSpace(BlobServiceUri);
    /// <summary>
    /// "AzureBlob" or "Memory" (volatile; tests and experiments only). Reminders follow it: in memory
    /// with "Memory", else in the Azure table <see cref="ReminderTable"/>.
    /// </summary>
    public string GrainState { get; set; } = "AzureBlob";
    public string GrainStateContainer { get; set; } = "grainstate";
    /// <summary>
    /// "AzureBlob" (container <see cref="CheckpointContainer"/>), "Folder" (<see cref="CheckpointFolder"/>)
    /// or "Memory" (in the silo's memory: volatile, and each silo has its own; tests and experiments only).
    /// </summary>
    public string Checkpoints { get; set; } = "AzureBlob";
    public string CheckpointContainer { get; set; } = "checkpoints";
    public string CheckpointFolder { get; set; } = "checkpoints";
    public string MembershipTable { get; set; } = "OrleansSiloInstances";
    /// <summary>The Azure table of reminders when <see cref="GrainState"/> is not "Memory".</summary>
    public string ReminderTable { get; set; } = "OrleansReminders";

    /// <summary>Azurite's well-known development account on 127.0.0.1.</summary>
    public const string AzuriteConnectionString =
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;";
}
