using Checkpointing.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers checkpointing with a host: <see cref="CheckpointingOptions"/> (validated when the host starts) and a <see cref="CheckpointerFactory"/>.</summary>
public static class CheckpointingServiceCollectionExtensions
{
    /// <summary>Checkpointing with its settings bound from <paramref name="section"/> (e.g. <c>configuration.GetSection("Checkpointing")</c>).</summary>
    public static IServiceCollection AddCheckpointing(this IServiceCollection services, IConfiguration section)
    {
        services.AddOptions<CheckpointingOptions>().Bind(section).ValidateOnStart();
        return services.AddCheckpointingServices();
    }

    /// <summary>Checkpointing with its settings set in code.</summary>
    public static IServiceCollection AddCheckpointing(this IServiceCollection services, Action<CheckpointingOptions> configure)
    {
        services.AddOptions<CheckpointingOptions>().Configure(configure).ValidateOnStart();
        return services.AddCheckpointingServices();
    }

    private static IServiceCollection AddCheckpointingServices(this IServiceCollection services)
    {
        services.AddLogging();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CheckpointingOptions>, CheckpointingOptionsValidator>());
        services.TryAddSingleton<CheckpointerFactory>();
        return services;
    }
}
