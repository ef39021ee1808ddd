namespace Checkpointing.TrainerAgent;

/// <summary>How a memory-tier holder listens and what it may keep.</summary>
public sealed class HolderOptions
{
    /// <summary>The address and port to listen on; port 0 picks a free one (<see cref="HolderServer.Endpoint"/> says which).</summary>
    public string Listen { get; set; } = "127.0.0.1:0";

    /// <summary>The tenant token of the job whose snapshots it keeps: every request must carry exactly this token, and only this tenant's runs are served.</summary>
    public string TenantToken { get; set; } = "";

    /// <summary>The most bytes it keeps at once; a transfer that would pass it is refused (507) and keeps nothing.</summary>
    public long MaxBytes { get; set; } = 16L << 30;

    /// <summary>The host name it announces for placement (replicas go to holders on other hosts first).</summary>
    public string Host { get; set; } = Environment.MachineName;
}
