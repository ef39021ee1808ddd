namespace Checkpointing.Grains;

/// <summary>The <c>reason</c> label of <c>ckpt_aborts</c>: why a pending checkpoint was abandoned.</summary>
public static class AbortReason
{
    /// <summary>No rank made progress within the pending timeout (swept by the timer or reminder).</summary>
    public const string Expired = "expired";

    /// <summary>Refused at commit (fenced, over quota, inconsistent reports).</summary>
    public const string Refused = "refused";

    /// <summary>A newer attempt of the run began.</summary>
    public const string Superseded = "superseded";
}
