using Checkpointing.Abstractions;
using Checkpointing.Storage;
using Checkpointing.TrainerAgent;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.Hosting;

/// <summary>Makes a host a trainer agent of a Checkpointing cluster: the Orleans client, the shard store and <see cref="RunAgents"/>.</summary>
public static class CheckpointingClusterHostExtensions
{
    /// <summary>
    /// Connects the host to the cluster named under <c>Checkpointing:Cluster</c> (gateways or membership, cluster id,
    /// tenant token, timeouts; the <see cref="ClusterConnectionOptions"/> names) and writes shards to the container under
    /// <c>Checkpointing:Store</c>. The settings are checked here, before the host is built, because the Orleans client is
    /// configured from them: bad ones throw <see cref="OptionsValidationException"/> naming each key.
    /// </summary>
    public static IHostApplicationBuilder AddCheckpointingCluster(this IHostApplicationBuilder builder)
    {
        var validator = new ClusterOptionsValidator();
        var cluster = Checked(builder.Configuration.GetSection(ClusterOptionsValidator.ClusterSection).Get<ClusterConnectionOptions>()
            ?? new ClusterConnectionOptions { TenantToken = "" }, validator.Validate);
        var store = Checked(builder.Configuration.GetSection(ClusterOptionsValidator.StoreSection).Get<BlobCheckpointStoreOptions>()
            ?? new BlobCheckpointStoreOptions(), validator.Validate);
        builder.Services.AddSingleton(Options.Options.Create(cluster));
        builder.Services.AddSingleton(Options.Options.Create(store));
        builder.UseOrleansClient(client => ClusterConnection.ConfigureClient(client, cluster));
        // Neither a URI nor a connection string: the ranks hold no storage credential and use what their run grain grants.
        if (store.ServiceUri is { Length: > 0 } || store.ConnectionString is { Length: > 0 })
            builder.Services.AddSingleton<ICheckpointStore>(_ => AzureBlobStore.FromAccount(
                StorageAccount.Parse(store.ServiceUri is { Length: > 0 } uri ? uri : store.ConnectionString!, () => new global::Azure.Identity.DefaultAzureCredential()),
                store.Container));
        builder.Services.AddLogging();
        builder.Services.AddSingleton<RunAgents>();
        return builder;
    }

    private static T Checked<T>(T options, Func<string?, T, ValidateOptionsResult> validate) where T : class
    {
        var result = validate(null, options);
        return result.Failed ? throw new OptionsValidationException(typeof(T).Name, typeof(T), result.Failures) : options;
    }
}
