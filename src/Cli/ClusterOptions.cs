using System.CommandLine;
using Checkpointing.TrainerAgent;

namespace Checkpointing.Cli;

/// <summary>The options every cluster command shares: where the silo is and which tenant credential to present.</summary>
public sealed class ClusterOptions
{
    /// <summary>The environment variable holding the tenant token when --token is not given (safer: argv is visible to other users).</summary>
    public const string TokenVariable = "CKPT_TOKEN";
    /// <summary>The environment variable holding the Azure Storage connection string when --storage is not given.</summary>
    public const string StorageVariable = "CKPT_STORAGE";

    private readonly Option<string> _silo = new("--silo") { Description = "gateways of the cluster, comma-separated (the client moves to another when one fails)", HelpName = "HOST:PORT,...", DefaultValueFactory = _ => "127.0.0.1:30000" };
    private readonly Option<string> _clusterId = new("--cluster-id") { Description = "the cluster's id", HelpName = "ID", DefaultValueFactory = _ => "checkpointing-dev" };
    private readonly Option<long> _connectTimeout = CliOptions.Integer("--connect-timeout", "seconds to wait for the cluster", 20, min: 1);
    private readonly Option<string?> _token = CliOptions.Text("--token", $"the tenant credential (visible to other users: prefer env {TokenVariable})", "TOKEN");

    /// <summary>Declares the cluster options on <paramref name="command"/>.</summary>
    public static ClusterOptions AddTo(Command command)
    {
        var options = new ClusterOptions();
        command.With(options._silo, options._clusterId, options._connectTimeout, options._token);
        return options;
    }

    /// <summary>The connection options the command line gives: --silo gateways, --cluster-id, --connect-timeout (seconds), and the token.</summary>
    /// <exception cref="UsageException">Neither --token nor <see cref="TokenVariable"/> gives a tenant token.</exception>
    public ClusterConnectionOptions Read(ParseResult parse) => new()
    {
        Gateways = parse.GetValue(_silo)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
        ClusterId = parse.GetValue(_clusterId)!,
        TenantToken = parse.GetValue(_token) ?? Environment.GetEnvironmentVariable(TokenVariable)
            ?? throw new UsageException($"a tenant credential is needed: --token TOKEN or env {TokenVariable} (the operator issues one with `ckpt token`)"),
        ConnectTimeout = TimeSpan.FromSeconds(parse.GetValue(_connectTimeout)),
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

    /// <summary>Connects to the cluster the command line names (<see cref="Read"/>); the caller disposes the connection.</summary>
    public Task<ClusterConnection> ConnectAsync(ParseResult parse) => ConnectAsync(Read(parse));
}
