using Checkpointing.Grains;

namespace Checkpointing.Silo;

/// <summary>
/// Reads and checks the settings a silo cannot run without before anything starts, so that a mistake ends the
/// process with one line and exit code 1 rather than a host failure with a stack trace.
/// </summary>
public static class SiloConfiguration
{
    public static void Check(IConfiguration configuration)
    {
        var runs = Bind<RunGrainOptions>(configuration, RunGrainOptions.Section);
        if (runs.CatalogTailLimit < RunGrainOptions.MinCatalogTailLimit)
            throw new InvalidSiloConfigurationException($"{RunGrainOptions.Section}:{nameof(RunGrainOptions.CatalogTailLimit)} must be at least {RunGrainOptions.MinCatalogTailLimit}.");
        var tenancy = Bind<TenancyOptions>(configuration, TenancyOptions.Section);
        ThrowIfNegativeDuration(runs, RunGrainOptions.Section);
        ThrowIfNegativeDuration(tenancy, TenancyOptions.Section);
        var http = Bind<HttpLimits>(configuration, HttpLimits.Section);
        ThrowIfNegativeDuration(http, HttpLimits.Section);
        if (http.MaxConcurrentConnections < 1 || http.MaxRequestBodyBytes < 1 || http.MaxRequestHeadersTotalBytes < 1 || http.TenantRequestsPerSecond < 1 || http.TenantBurst < 1)
            throw new InvalidSiloConfigurationException($"Every count and size under {HttpLimits.Section} must be at least 1.");
        if (tenancy.DefaultMaxRuns < 0 || tenancy.DefaultMaxRetainedBytes < 0)
            throw new InvalidSiloConfigurationException($"{TenancyOptions.Section}:{nameof(TenancyOptions.DefaultMaxRuns)} and {nameof(TenancyOptions.DefaultMaxRetainedBytes)} must not be negative.");
        var storage = Bind<StorageSettings>(configuration, StorageSettings.Section);
        if (storage.UsesIdentity)
        {
            var silo = Bind<SiloSettings>(configuration, SiloSettings.Section);
            ThrowIfNotHttps(storage.BlobServiceUri, $"{StorageSettings.Section}:{nameof(StorageSettings.BlobServiceUri)}");
            if (silo.Mode is "Cluster" or "Kubernetes" || storage.GrainState != "Memory") // membership, or reminders beside grain state
                ThrowIfNotHttps(storage.TableServiceUri, $"{StorageSettings.Section}:{nameof(StorageSettings.TableServiceUri)}");
        }
        try
        {
            tenancy.KeyBytes();
        }
        catch (FormatException)
        {
            throw new InvalidSiloConfigurationException($"{TenancyOptions.Section}:{nameof(TenancyOptions.SigningKey)} is not base64.");
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidSiloConfigurationException(e.Message);
        }
    }

    /// <summary>A storage service reached as the silo's identity needs an https URI: tokens are never sent in the clear.</summary>
    private static void ThrowIfNotHttps(string? value, string key)
    {
        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps)
            throw new InvalidSiloConfigurationException($"{key} must be an https URI when the silo uses its identity (Storage:BlobServiceUri is set), not '{value}'.");
    }

    private static void ThrowIfNegativeDuration<T>(T options, string section)
    {
        foreach (var property in typeof(T).GetProperties().Where(p => p.PropertyType == typeof(TimeSpan)))
            if ((TimeSpan)property.GetValue(options)! < TimeSpan.Zero)
                throw new InvalidSiloConfigurationException($"{section}:{property.Name} must not be negative.");
    }

    /// <summary>The section bound to <typeparamref name="T"/>; a value that does not convert is an <see cref="InvalidSiloConfigurationException"/> naming its key.</summary>
    public static T Bind<T>(IConfiguration configuration, string section) where T : new()
    {
        try
        {
            return configuration.GetSection(section).Get<T>() ?? new T();
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidSiloConfigurationException(e.Message);
        }
    }
}
