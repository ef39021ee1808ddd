namespace Checkpointing.TrainerAgent;

/// <summary>Where a rank resumed from (<see cref="RunAgent.ResumeAsync"/>) and why.</summary>
/// <param name="Tier"><see cref="Memory"/>, <see cref="Durable"/> or <see cref="Scratch"/>.</param>
/// <param name="Name">The checkpoint loaded; null from scratch.</param>
/// <param name="State">What the checkpoint held beyond the model and checkpointables, e.g. "iteration"; empty from scratch.</param>
/// <param name="Reason">Why this tier, in one sentence (the run grain's).</param>
public sealed record ResumeResult(string Tier, string? Name, OrderedDictionary<string, object?> State, string Reason)
{
    /// <summary>Resumed from a memory-tier checkpoint.</summary>
    public const string Memory = "memory";
    /// <summary>Resumed from the durable tag.</summary>
    public const string Durable = "durable";
    /// <summary>Nothing to resume from: training starts at iteration 0.</summary>
    public const string Scratch = "scratch";

    /// <summary>The iteration training continues at: the loaded checkpoint's iteration + 1, or 0.</summary>
    public long StartIteration => State.TryGetValue("iteration", out var iteration) && iteration is long last ? last + 1 : 0;
}
