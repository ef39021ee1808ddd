using System.CommandLine;
using Checkpointing.Abstractions;
using Checkpointing.Storage;

namespace Checkpointing.Cli;

/// <summary>Where an agent writes shards: a blob container (by connection string, or by blob service URI as this machine's identity), a folder, or what the run grain grants.</summary>
public sealed class StoreOptions
{
    private readonly Option<string?> _folder = CliOptions.Text("--store-folder", "write shards into this folder", "DIR");
    private readonly Option<string?> _connection = CliOptions.Text("--storage", $"an Azure Storage connection string, or the blob service's https URI to use this machine's identity (DefaultAzureCredential); a connection string is visible to other users: prefer env {ClusterOptions.StorageVariable}", "CONN|URI");
    /// <summary>The blob container agents write into unless told otherwise.</summary>
    public const string DefaultContainer = "checkpoints";

    private readonly Option<string> _container = new("--container") { Description = "the blob container", HelpName = "NAME", DefaultValueFactory = _ => DefaultContainer };

    /// <summary>Declares --store-folder, --storage and --container on <paramref name="command"/>.</summary>
    public static StoreOptions AddTo(Command command)
    {
        var options = new StoreOptions();
        command.With(options._folder, options._connection, options._container);
        return options;
    }

    /// <summary>
    /// The store the command line names: a folder (--store-folder), or a blob container (--container, default
    /// <see cref="DefaultContainer"/>) reached with --storage or <see cref="ClusterOptions.StorageVariable"/>: a connection string, or
    /// an https blob service URI reached as this machine's identity. Null when neither is given: the rank then holds no storage
    /// credential and writes and reads what its run grain grants.
    /// </summary>
    /// <exception cref="UsageException">Both a folder and a blob store are given.</exception>
    public ICheckpointStore? Read(ParseResult parse)
    {
        var folder = parse.GetValue(_folder);
        var connection = parse.GetValue(_connection) ?? Environment.GetEnvironmentVariable(ClusterOptions.StorageVariable);
        return (folder, connection) switch
        {
            ({ } f, null) => new FileSystemStore(f),
            (null, { } c) => AzureBlobStore.FromAccount(StorageAccount.Parse(c, () => new Azure.Identity.DefaultAzureCredential()), parse.GetValue(_container)!),
            (null, null) => null,
            _ => throw new UsageException($"give one shard store: --store-folder DIR, or env {ClusterOptions.StorageVariable} (or --storage) [--container NAME]; or neither, to use what the run grain grants", "ckpt-lab agent"),
        };
    }
}
