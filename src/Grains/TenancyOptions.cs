using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>Silo settings for tenant credentials (section "Tenancy").</summary>
public sealed class TenancyOptions
{
    /// <summary>The configuration section these settings are read from.</summary>
    public const string Section = "Tenancy";

    /// <summary>Base64 HMAC key that signs tenant tokens (at least 32 bytes).</summary>
    public string SigningKey { get; set; } = "";

    /// <summary>How long a run commits against a retained-bytes grant before it asks its tenant again.</summary>
    public TimeSpan GrantLease { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often a tenant grain saves the retained bytes its runs reported (grants are saved at once).</summary>
    public TimeSpan ReportFlushPeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Runs a tenant may have until an operator sets its limits (one tenant must not fill a silo with runs).</summary>
    public int DefaultMaxRuns { get; set; } = 1000;

    /// <summary>Bytes a tenant's checkpoints may retain until an operator sets its limits (1 TiB).</summary>
    public long DefaultMaxRetainedBytes { get; set; } = 1L << 40;

    /// <summary>The limits of a tenant whose limits no operator set: <see cref="DefaultMaxRuns"/> and <see cref="DefaultMaxRetainedBytes"/>.</summary>
    public TenantLimits DefaultLimits => new(DefaultMaxRuns, DefaultMaxRetainedBytes);

    /// <summary>The decoded <see cref="SigningKey"/>.</summary>
    /// <exception cref="FormatException">the key is not base64</exception>
    /// <exception cref="InvalidOperationException">the key is shorter than 32 bytes</exception>
    public byte[] KeyBytes()
    {
        var key = Convert.FromBase64String(SigningKey);
        return key.Length >= 32 ? key : throw new InvalidOperationException("Tenancy:SigningKey must be at least 32 bytes (base64).");
    }
}
