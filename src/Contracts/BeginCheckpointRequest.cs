namespace Checkpointing.Contracts;

/// <summary>
/// Phase one of a save: rank <see cref="Rank"/> of <see cref="WorldSize"/> asks to save
/// <see cref="Name"/> at <see cref="Iteration"/> under attempt <see cref="Epoch"/>. The rank sends
/// only a summary of its tensor list (every rank of a data-parallel job holds the same one): each
/// rank computes its own share with <see cref="SavePlan.For"/>, and the grain checks the union of
/// the reports against the summary at commit, so messages and grain state stay O(1) in tensors.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record BeginCheckpointRequest(
    [property: Id(0)] string Name,
    [property: Id(1)] long? Iteration,
    [property: Id(2)] int WorldSize,
    [property: Id(3)] int Rank,
    [property: Id(4)] long Epoch,
    [property: Id(5)] TensorListSummary Tensors);
