namespace Checkpointing.Contracts;

/// <summary>
/// The attempt's one resume decision, the same for every rank and durable once made. <paramref name="Decided"/> false: not
/// every rank has reported yet; ask again. <paramref name="UseMemory"/>: every rank holds its verified snapshot of
/// <paramref name="Name"/>, so all load it; otherwise all resume from the durable tier. <paramref name="Reason"/> says why.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ResumeDecision(
    [property: Id(0)] bool Decided,
    [property: Id(1)] bool UseMemory,
    [property: Id(2)] string Name,
    [property: Id(3)] string Reason);
