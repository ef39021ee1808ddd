using Checkpointing.Abstractions;
using Checkpointing.Storage;
using Checkpointing.TrainerAgent.Cluster;

namespace Checkpointing.Cli;

/// <summary>The options every cluster command shares: where the silo is and which tenant credential to present.</summary>
public static class ClusterOptions
{
    public const string TokenVariable = "CKPT_TOKEN";
    public const string StorageVariable = "CKPT_STORAGE";

    public static ClusterConnectionOptions Read(CliArguments args) => new()
    {
        Gateways = [args.String("silo") ?? "127.0.0.1:30000"],
        ClusterId = args.String("cluster-id") ?? "checkpointing-dev",
        TenantToken = args.String("token") ?? Environment.GetEnvironmentVariable(TokenVariable)
            ?? throw new UsageException("a tenant credential is needed: --token TOKEN or env CKPT_TOKEN (the operator issues one with `ckpt token`)"),
        ConnectTimeout = TimeSpan.FromSeconds(args.Long("connect-timeout", 20, min: 1)),
    };

    /// <summary>Connects to the cluster; a cluster that cannot be reached is one <see cref="SiloUnreachableException"/> naming where it was looked for.</summary>
    public static async Task<ClusterConnection> ConnectAsync(ClusterConnectionOptions options)
    {
        try
        {
            return await ClusterConnection.ConnectAsync(options);
        }
        catch (Exception e) when (e is Orleans.Runtime.OrleansException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw new SiloUnreachableException(
                $"cannot reach the silo at {string.Join(", ", options.Gateways)} (cluster '{options.ClusterId}') within {options.ConnectTimeout.TotalSeconds:0.#} s: {CliFailure.OneLine(e.Message)}", e);
        }
    }

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
