using Checkpointing.Abstractions;
using Microsoft.Extensions.DependencyInjection;

namespace Checkpointing.Grains;

public static class SiloBuilderExtensions
{
    /// <summary>
    /// Everything the run and tenant grains need on a silo: the checkpoint store, the access filter
    /// and the internal-call signer, the clock, and their options. Grain state providers ("runs", "tenants") are the host's choice.
    /// </summary>
    public static ISiloBuilder AddCheckpointing(this ISiloBuilder silo, ICheckpointStore store, Action<TenancyOptions>? tenancy = null, Action<RunGrainOptions>? runs = null)
    {
        silo.Services.AddSingleton<InternalCallProof>();
        silo.AddIncomingGrainCallFilter<TenantAccessFilter>();
        silo.AddOutgoingGrainCallFilter<InternalCallSigner>();
        silo.Services.AddSingleton(TimeProvider.System);
        silo.Services.AddSingleton<ICheckpointStoreProvider>(new CheckpointStoreProvider(store));
        if (tenancy is not null) silo.Services.Configure(tenancy);
        if (runs is not null) silo.Services.Configure(runs);
        return silo;
    }
}
