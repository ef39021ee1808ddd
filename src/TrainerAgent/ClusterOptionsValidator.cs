using Microsoft.Extensions.Options;

namespace Checkpointing.TrainerAgent;

/// <summary>Refuses cluster and store settings a rank cannot work with, each failure naming its configuration key.</summary>
public sealed class ClusterOptionsValidator : IValidateOptions<ClusterConnectionOptions>, IValidateOptions<BlobCheckpointStoreOptions>
{
    /// <summary>The configuration section of the cluster settings.</summary>
    public const string ClusterSection = "Checkpointing:Cluster";

    /// <summary>The configuration section of the store settings.</summary>
    public const string StoreSection = "Checkpointing:Store";

    /// <inheritdoc/>
    public ValidateOptionsResult Validate(string? name, ClusterConnectionOptions options)
    {
        var failures = new List<string>();
        if (options.Gateways.Count == 0 && string.IsNullOrWhiteSpace(options.MembershipConnectionString))
            failures.Add($"{ClusterSection}:Gateways (host:port, ...) or {ClusterSection}:MembershipConnectionString is required.");
        foreach (var gateway in options.Gateways.Where(g => !ClusterConnection.TrySplitHostPort(g, out _, out _)))
            failures.Add($"{ClusterSection}:Gateways: '{gateway}' is not host:port.");
        if (string.IsNullOrWhiteSpace(options.TenantToken)) failures.Add($"{ClusterSection}:TenantToken is required (the operator issues one with `ckpt token`).");
        if (options.ConnectTimeout <= TimeSpan.Zero) failures.Add($"{ClusterSection}:ConnectTimeout must be positive.");
        if (options.ResponseTimeout <= TimeSpan.Zero) failures.Add($"{ClusterSection}:ResponseTimeout must be positive.");
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <inheritdoc/>
    public ValidateOptionsResult Validate(string? name, BlobCheckpointStoreOptions options)
    {
        var failures = new List<string>();
        var connection = !string.IsNullOrWhiteSpace(options.ConnectionString);
        var identity = !string.IsNullOrWhiteSpace(options.ServiceUri);
        if (connection && identity) failures.Add($"{StoreSection}: give ServiceUri (https, as this identity) or ConnectionString, not both (or neither, to use what the run grain grants).");
        if (identity && !(Uri.TryCreate(options.ServiceUri, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttps))
            failures.Add($"{StoreSection}:ServiceUri '{options.ServiceUri}' is not an https URI.");
        if (string.IsNullOrWhiteSpace(options.Container)) failures.Add($"{StoreSection}:Container must not be empty.");
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
