namespace Checkpointing.Silo;

/// <summary>How the silo joins a cluster and where it keeps state (section "Silo" and "Storage").</summary>
public sealed class SiloSettings
{
    public const string Section = "Silo";

    /// <summary>"Dev": localhost clustering, one or more silos on this machine. "Cluster": Azure Table membership.</summary>
    public string Mode { get; set; } = "Dev";
    public string ClusterId { get; set; } = "checkpointing-dev";
    public string ServiceId { get; set; } = "checkpointing";
    public int SiloPort { get; set; } = 11111;
    public int GatewayPort { get; set; } = 30000;
    /// <summary>Dev mode with several silos: the first silo's port, which the others join.</summary>
    public int? PrimarySiloPort { get; set; }
    /// <summary>Cluster mode: the address other silos and clients reach this one at.</summary>
    public string AdvertisedAddress { get; set; } = "127.0.0.1";
    /// <summary>The HTTP port: liveness (/healthz), readiness (/readyz), /stats, the API (/api/v1) and /openapi/v1.json.</summary>
    public int? HttpPort { get; set; }
    /// <summary>The HTTP port's first name, still honoured when <see cref="HttpPort"/> is not set.</summary>
    public int HealthPort { get; set; } = 8080;
    /// <summary>The address HTTP listens on: loopback by default; the host's address (or 0.0.0.0) to serve the API, dashboard and /metrics to other machines.</summary>
    public string HttpAddress { get; set; } = "127.0.0.1";
}

public sealed class StorageSettings
{
    public const string Section = "Storage";

    /// <summary>Azure Storage connection string (Azurite in dev) for membership, grain state and, with Checkpoints=AzureBlob, shards.</summary>
    public string ConnectionString { get; set; } = AzuriteConnectionString;
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
