namespace Checkpointing.TrainerAgent;

/// <summary>How an agent or the CLI reaches the silos, and the tenant credential it presents.</summary>
public sealed record ClusterConnectionOptions
{
    /// <summary>Gateways to use directly ("host:port"); dev mode. Empty when <see cref="MembershipConnectionString"/> is set.</summary>
    public IReadOnlyList<string> Gateways { get; init; } = [];

    /// <summary>Azure Storage connection string of the membership table (cluster mode).</summary>
    public string? MembershipConnectionString { get; init; }

    /// <summary>The cluster's id; must match the silos' <c>Silo:ClusterId</c>.</summary>
    public string ClusterId { get; init; } = "checkpointing-dev";
    /// <summary>The service's id; must match the silos' <c>Silo:ServiceId</c>.</summary>
    public string ServiceId { get; init; } = "checkpointing";

    /// <summary>The tenant token sent with every call (see <see cref="Checkpointing.Contracts.TenantTokens"/>).</summary>
    public required string TenantToken { get; init; }

    /// <summary>How long a grain call may go unanswered before it fails with a <see cref="TimeoutException"/>; keep it above <see cref="RankCommitter.PollWait"/>.</summary>
    public TimeSpan ResponseTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long to keep trying to reach a gateway before giving up.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(20);
}
