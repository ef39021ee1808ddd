namespace Checkpointing.Contracts;

/// <summary>
/// One training run (key "tenant/run"): owns its policy, catalog, last-checkpoint tag and the two-phase commit of
/// multi-rank checkpoints. Its members are split by caller: <see cref="ICheckpointProtocol"/> (ranks' agents),
/// <see cref="IRunAdministration"/> (operators, schedulers) and <see cref="IRunReads"/>. Every member may be called by a
/// holder of the run's tenant credential unless it says otherwise.
/// </summary>
public interface ITrainingRunGrain : ICheckpointProtocol, IRunAdministration, IRunReads;
