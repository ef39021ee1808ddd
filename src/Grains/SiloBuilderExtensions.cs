using Checkpointing.Abstractions;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Orleans.Serialization.Cloning;
using Orleans.Serialization.Codecs;
using Orleans.Storage;

namespace Checkpointing.Grains;

/// <summary>Registers the checkpointing grains' services on an Orleans silo.</summary>
public static class SiloBuilderExtensions
{
    /// <summary>
    /// Everything the run and tenant grains need on a silo: the checkpoint store, the access filter
    /// and the internal-call signer, trace propagation through grain calls, the clock, the metrics, the binary grain-state serializer, and their options. Grain state providers ("runs", "tenants") are the host's choice.
    /// </summary>
    public static ISiloBuilder AddCheckpointing(this ISiloBuilder silo, ICheckpointStore store, Action<TenancyOptions>? tenancy = null, Action<RunGrainOptions>? runs = null)
    {
        // Trace context travels with grain calls, so a rank's save span and the grain's commit span form one trace.
        silo.AddActivityPropagation();
        silo.Services.AddSingleton<InternalCallProof>();
        silo.AddIncomingGrainCallFilter<TenantAccessFilter>();
        silo.AddOutgoingGrainCallFilter<InternalCallSigner>();
        silo.Services.AddSingleton(TimeProvider.System);
        silo.Services.AddMetrics();
        silo.Services.AddSingleton<SiloMetrics>();
        // Every grain storage provider that is not given a serializer takes this one (options default from the container).
        silo.Services.AddSingleton<IGrainStorageSerializer>(services => new BinaryStateSerializer(
            services.GetRequiredService<Serializer>(), new JsonGrainStorageSerializer(services.GetRequiredService<OrleansJsonSerializer>())));
        AddRawBytesCodec(silo.Services);
        silo.Services.AddSingleton<ICheckpointStoreProvider>(new CheckpointStoreProvider(store));
        if (tenancy is not null) silo.Services.Configure(tenancy);
        if (runs is not null) silo.Services.Configure(runs);
        return silo;
    }

    /// <summary>
    /// Orleans picks its generic ReadOnlyMemory&lt;T&gt; codec, one tagged field per byte, for the ReadOnlyMemory&lt;byte&gt;
    /// state that memory grain storage sends to its storage grains: about a third of a silo's CPU at 64 runs × 2 ranks
    /// (perf). Its own raw-bytes codec and copier exist but are not chosen unless registered for the closed type.
    /// </summary>
    public static IServiceCollection AddRawBytesCodec(IServiceCollection services) => services
        .AddSingleton<IFieldCodec<ReadOnlyMemory<byte>>, ReadOnlyMemoryOfByteCodec>()
        .AddSingleton<IDeepCopier<ReadOnlyMemory<byte>>, ReadOnlyMemoryOfByteCopier>();
}
