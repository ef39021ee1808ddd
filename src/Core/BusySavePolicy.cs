namespace Checkpointing.Core;

/// <summary>What an asynchronous save does when the previous one is still writing.</summary>
public enum BusySavePolicy
{
    /// <summary>Wait for the previous write to finish, then snapshot (training stalls for the rest of that write).</summary>
    Wait,

    /// <summary>Do not save this checkpoint; log a warning. Training never stalls on storage.</summary>
    Skip,
}
