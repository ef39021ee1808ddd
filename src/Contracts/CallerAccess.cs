namespace Checkpointing.Contracts;

/// <summary>Who may call a grain interface member; the silo refuses every other caller.</summary>
public enum CallerAccess
{
    /// <summary>A client holding a credential for the target's tenant (or the operator's).</summary>
    Tenant,

    /// <summary>A client holding the operator's credential.</summary>
    Operator,

    /// <summary>Grains of the cluster only; never a client, whatever credential it holds.</summary>
    Internal,
}
