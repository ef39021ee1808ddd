using System.Net;
using Azure.Data.Tables;
using Checkpointing.Contracts;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;

namespace Checkpointing.TrainerAgent;

/// <summary>An Orleans client connected to the cluster; dispose to disconnect.</summary>
public sealed class ClusterConnection : IAsyncDisposable
{
    private readonly IHost _host;
    private readonly ClusterConnectionOptions _options;

    private ClusterConnection(IHost host, ClusterConnectionOptions options) => (_host, _options) = (host, options);

    /// <summary>The Orleans client, to get grains from (e.g. for <see cref="RunAgent.JoinAsync"/>); every call it makes carries the tenant token.</summary>
    public IClusterClient Client => _host.Services.GetRequiredService<IClusterClient>();

    /// <summary>The grain of run <paramref name="id"/> (key "tenant/run"). Getting it makes no call; the silo checks the token on each call.</summary>
    public ITrainingRunGrain Run(RunId id) => Client.GetGrain<ITrainingRunGrain>(id.Key);

    /// <summary>The grain of <paramref name="tenant"/>: its limits and runs. Getting it makes no call.</summary>
    public ITenantGrain Tenant(string tenant) => Client.GetGrain<ITenantGrain>(tenant);

    /// <summary>
    /// Starts an Orleans client and connects it: through the membership table when
    /// <see cref="ClusterConnectionOptions.MembershipConnectionString"/> is set, else straight to
    /// <see cref="ClusterConnectionOptions.Gateways"/>. A cluster that does not answer is tried again until
    /// <see cref="ClusterConnectionOptions.ConnectTimeout"/>, then the client's connection error is thrown. The token is not
    /// checked here: a bad one fails the first grain call with <see cref="TenantAccessDeniedException"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Neither gateways nor a membership connection string were given, or a gateway is not host:port.</exception>
    public static async Task<ClusterConnection> ConnectAsync(ClusterConnectionOptions options, CancellationToken cancellationToken = default)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleansClient(client => ConfigureClient(client, options));
        var host = builder.Build();
        await host.StartAsync(cancellationToken).ConfigureAwait(false);
        return new ClusterConnection(host, options);
    }

    /// <summary>
    /// Makes <paramref name="call"/> and tries it again while the cluster fails over (a silo went away, the grain is moving
    /// or reloading) until <see cref="ClusterConnectionOptions.ConnectTimeout"/> has passed; a refusal or any other error is
    /// thrown at once. For one-off commands, whose caller would otherwise see a silo's death as its own failure.
    /// </summary>
    public Task<T> RetryWhileFailingOverAsync<T>(Func<Task<T>> call, CancellationToken cancellationToken = default) =>
        Transient.RetryAsync(call, DateTimeOffset.UtcNow + _options.ConnectTimeout, cancellationToken);

    /// <summary>
    /// Configures an Orleans client for the cluster <paramref name="options"/> names: clustering (membership table or
    /// gateways), identity, response timeout, retries until <see cref="ClusterConnectionOptions.ConnectTimeout"/> from now,
    /// and the tenant token on every call. Shared by <see cref="ConnectAsync"/> and the generic-host form.
    /// </summary>
    internal static void ConfigureClient(IClientBuilder client, ClusterConnectionOptions options)
    {
        var started = DateTimeOffset.UtcNow;
        if (options.MembershipConnectionString is { } connection)
        {
            client.UseAzureStorageClustering(o => o.TableServiceClient = new TableServiceClient(connection));
        }
        else
        {
            if (options.Gateways.Count == 0) throw new ArgumentException("Give at least one gateway (host:port) or a membership connection string.", nameof(options));
            client.UseStaticClustering(options.Gateways.Select(ParseEndpoint).ToArray());
        }
        client.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = options.ClusterId;
            o.ServiceId = options.ServiceId;
        });
        client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = options.ResponseTimeout);
        client.AddActivityPropagation(); // a save's spans and the run grain's commit span form one trace
        client.UseConnectionRetryFilter((_, _) => Task.FromResult(DateTimeOffset.UtcNow - started < options.ConnectTimeout));
        client.AddOutgoingGrainCallFilter(context =>
        {
            Orleans.Runtime.RequestContext.Set(TenantTokens.RequestContextKey, options.TenantToken);
            return context.Invoke();
        });
    }

    /// <summary>
    /// The endpoint of a gateway given as "host:port": "localhost" is the loopback address, an IP address is taken as it
    /// is, any other host name is resolved through DNS (its first address).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="hostPort"/> is not host:port with an integer port.</exception>
    public static IPEndPoint ParseEndpoint(string hostPort)
    {
        if (!TrySplitHostPort(hostPort, out var host, out var port)) throw new ArgumentException($"'{hostPort}' is not host:port.", nameof(hostPort));
        var address = host == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(host, out var ip) ? ip : Dns.GetHostAddresses(host).First();
        return new IPEndPoint(address, port);
    }

    /// <summary>Splits "host:port" without resolving the host; false when there is no host or the port is not 1 to 65535.</summary>
    public static bool TrySplitHostPort(string hostPort, out string host, out int port)
    {
        var colon = hostPort.LastIndexOf(':');
        host = colon > 0 ? hostPort[..colon] : "";
        port = 0;
        return colon > 0 && int.TryParse(hostPort[(colon + 1)..], out port) && port is >= 1 and <= 65535;
    }

    /// <summary>Stops the client, disconnecting from the cluster.</summary>
    public async ValueTask DisposeAsync()
    {
        await _host.StopAsync().ConfigureAwait(false);
        _host.Dispose();
    }
}
