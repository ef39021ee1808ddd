using Checkpointing.Abstractions;
using Checkpointing.Storage;
using Checkpointing.TrainerAgent.Cluster;

namespace Checkpointing.Cli;

/// <summary>The options every cluster command shares: where the silo is and which tenant credential to present.</summary>
public static class ClusterOptions
{
    public const string TokenVariable = "CKPT_TOKEN";
    public const string StorageVariable = "CKPT_STORAGE";

    public const string Help = "--silo HOST:PORT (gateway; default 127.0.0.1:30000) [--cluster-id ID] env CKPT_TOKEN=TOKEN (or --token TOKEN, visible to other users)";

    public static ClusterConnectionOptions Read(CliArguments args) => new()
    {
        Gateways = [args.String("silo") ?? "127.0.0.1:30000"],
        ClusterId = args.String("cluster-id") ?? "checkpointing-dev",
        TenantToken = args.String("token") ?? Environment.GetEnvironmentVariable(TokenVariable)
            ?? throw new UsageException("a tenant credential is needed: --token TOKEN or env CKPT_TOKEN (the operator issues one with `ckpt token`)"),
    };

    /// <summary>The blob store agents write shards to: an Azure Storage connection string, or a folder.</summary>
    public static ICheckpointStore ReadStore(CliArguments args)
    {
        var folder = args.String("store-folder");
        var connection = args.String("storage") ?? Environment.GetEnvironmentVariable(StorageVariable);
        var container = args.String("container") ?? "checkpoints";
        return (folder, connection) switch
        {
            ({ } f, null) => new FileSystemStore(f),
            (null, { } c) => AzureBlobStore.FromConnectionString(c, container),
            _ => throw new UsageException("give the shard store: env CKPT_STORAGE=AZURE_CONNECTION_STRING (or --storage) [--container NAME], or --store-folder DIR"),
        };
    }
}
