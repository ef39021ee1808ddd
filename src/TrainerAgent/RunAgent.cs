using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Core;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// One rank of a training job in cluster mode: a <see cref="Checkpointer"/> over the run grain and
/// blob store, and a <see cref="PeriodicCheckpointer"/> that follows the grain's policy and its
/// checkpoint-now requests. Call <see cref="StepAsync"/> once per iteration on every rank.
/// </summary>
public sealed class RunAgent
{
    private PeriodicCheckpointer _periodic;

    private RunAgent(Checkpointer checkpointer, ClusterBackend backend, PeriodicPolicy policy)
    {
        Checkpointer = checkpointer;
        Backend = backend;
        _periodic = Periodic(policy);
    }

    public Checkpointer Checkpointer { get; }
    public ClusterBackend Backend { get; }
    public PeriodicPolicy Policy => _periodic.Policy;

    /// <param name="modelLayouts">The part of each model tensor this rank holds (<see cref="Checkpointer.ModelLayouts"/>); null: every tensor whole.</param>
    /// <param name="loadStatistics">Receives what this rank's loads needed and read.</param>
    public static async Task<RunAgent> JoinAsync(IGrainFactory grains, RunId run, ICheckpointStore store, int rank, int worldSize, long epoch,
        nn.Module model, IEnumerable<KeyValuePair<string, object>> checkpointables, ILogger? logger = null,
        Func<string, TensorLayout?>? modelLayouts = null, Formats.LoadStatistics? loadStatistics = null)
    {
        var backend = new ClusterBackend(grains, run, store, rank, worldSize, epoch);
        var checkpointer = new Checkpointer(model, backend, checkpointables, logger) { ModelLayouts = modelLayouts, LoadStatistics = loadStatistics };
        var directive = await Transient.RetryAsync(() => backend.Grain.GetDirective(epoch, -1), DateTimeOffset.UtcNow + backend.Committer.CommitTimeout, CancellationToken.None).ConfigureAwait(false);
        return new RunAgent(checkpointer, backend, directive.Policy);
    }

    /// <summary>The run's policy, before a rank builds its model (e.g. to know max_iter); tried again while the cluster fails over, up to 10 minutes.</summary>
    public static async Task<PeriodicPolicy> ReadPolicyAsync(IGrainFactory grains, RunId run, CancellationToken cancellationToken = default) =>
        (await Transient.RetryAsync(() => grains.GetGrain<ITrainingRunGrain>(run.Key).Get(), DateTimeOffset.UtcNow.AddMinutes(10), cancellationToken).ConfigureAwait(false)).Policy;

    private PeriodicCheckpointer Periodic(PeriodicPolicy policy) =>
        new(Checkpointer, policy.Period, policy.MaxIter, policy.MaxToKeep, policy.FilePrefix);

    /// <summary>
    /// Saves when the policy or a checkpoint-now request says so; picks up policy changes made on the grain.
    /// A directive call that fails for a transient reason (a silo failing over, the cluster briefly
    /// unreachable) is tried again until the commit timeout, as saves are: the step waits rather than the
    /// process failing, and never goes on without the directive, since every rank must see the same
    /// checkpoint-now iteration or the others would wait for it in a save it never joins.
    /// </summary>
    public async Task StepAsync(long iteration, IReadOnlyDictionary<string, object?>? extra = null, CancellationToken cancellationToken = default)
    {
        var deadline = DateTimeOffset.UtcNow + Backend.Committer.CommitTimeout;
        var directive = await Transient.RetryAsync(() => Backend.Grain.GetDirective(Backend.Epoch, iteration), deadline, cancellationToken).ConfigureAwait(false);
        if (directive.Policy != _periodic.Policy) _periodic = Periodic(directive.Policy);
        if (directive.CheckpointNow?.SaveAtIteration == iteration && !_periodic.Policy.IsPeriodicStep(iteration))
        {
            var state = new Dictionary<string, object?>(StringComparer.Ordinal) { ["iteration"] = iteration };
            foreach (var (key, value) in extra ?? new Dictionary<string, object?>()) state[key] = value;
            await Checkpointer.SaveAsync(_periodic.Policy.PeriodicName(iteration), state, cancellationToken).ConfigureAwait(false);
        }
        await _periodic.StepAsync(iteration, extra, cancellationToken).ConfigureAwait(false);
    }
}
