using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>The cluster's tenants for the operator's view (<see cref="ITenantDirectory"/>): written only when a tenant is new.</summary>
internal sealed class TenantDirectoryGrain(
    [PersistentState("directory", GrainStorage.Tenants)] IPersistentState<TenantDirectoryState> state) : Grain, ITenantDirectory
{
    public async Task Add(string tenant)
    {
        Abstractions.CheckpointName.Validate(tenant, "tenant name");
        if (!state.State.Tenants.Add(tenant)) return;
        await state.WriteStateAsync();
    }

    public Task<IReadOnlyList<string>> List() => Task.FromResult<IReadOnlyList<string>>(state.State.Tenants.Order(StringComparer.Ordinal).ToList());
}
