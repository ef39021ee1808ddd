using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Core;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// One rank of a training job in cluster mode: a <see cref="Checkpointer"/> over the run grain and
/// blob store, and a <see cref="PeriodicCheckpointer"/> that follows the grain's policy and its
/// checkpoint-now requests. Call <see cref="StepAsync"/> once per iteration on every rank. From joining until it is disposed,
/// the agent sends the run grain a heartbeat every few seconds (the newest step's iteration, loss and step time), from which the
/// grain tells a healthy run from a stalled one or one with a rank missing.
/// </summary>
public sealed class RunAgent : IAsyncDisposable
{
    private readonly RankHeartbeats _heartbeats;
    private PeriodicCheckpointer _periodic;

    private RunAgent(Checkpointer checkpointer, ClusterBackend backend, PeriodicPolicy policy, RankHeartbeats heartbeats)
    {
        Checkpointer = checkpointer;
        Backend = backend;
        _periodic = Periodic(policy);
        _heartbeats = heartbeats;
    }

    /// <summary>The checkpointer over the run: resume with <see cref="Checkpointer.ResumeOrLoadAsync"/>; a save outside the policy (<see cref="Checkpointer.SaveAsync"/>) is collective, so every rank calls it.</summary>
    public Checkpointer Checkpointer { get; }
    /// <summary>The cluster backend under <see cref="Checkpointer"/>: this rank's identity, the run grain, and the <see cref="ClusterBackend.Committer"/> to tune.</summary>
    public ClusterBackend Backend { get; }
    /// <summary>The run's periodic policy as of the last directive; <see cref="StepAsync"/> picks up changes made on the grain.</summary>
    public PeriodicPolicy Policy => _periodic.Policy;

    /// <summary>
    /// Joins <paramref name="run"/> as one rank: builds a <see cref="Checkpointer"/> over a <see cref="ClusterBackend"/> and reads the
    /// run's policy from its grain, trying again through failovers until the commit timeout. Saves and loads nothing.
    /// </summary>
    /// <param name="grains">Where the run's grain is got from, e.g. <see cref="ClusterConnection.Client"/>.</param>
    /// <param name="run">The run to join; it must exist (<see cref="RunNotFoundException"/> otherwise).</param>
    /// <param name="store">The store ranks write shards to and load checkpoints from; null: the objects the run grain grants
    /// (<see cref="GrantedStore"/>), so that this process needs no storage credential.</param>
    /// <param name="rank">This rank, 0 to <paramref name="worldSize"/> - 1.</param>
    /// <param name="worldSize">How many ranks take part in every save.</param>
    /// <param name="epoch">The job attempt from <see cref="ICheckpointProtocol.StartAttempt"/> (<c>ckpt run attempt</c>); any other than the run's current one is refused with <see cref="StaleAttemptException"/>.</param>
    /// <param name="model">The model; its state dict is saved under "model".</param>
    /// <param name="checkpointables">Other objects with state, by name ("optimizer", "scheduler"): TorchSharp modules, optimizers, LR
    /// schedulers, or <see cref="ICheckpointable"/>.</param>
    /// <param name="logger">Receives what saves and loads do and what did not load cleanly; null logs nothing.</param>
    /// <param name="modelLayouts">The part of each model tensor this rank holds (<see cref="Checkpointer.ModelLayouts"/>); null: every tensor whole.</param>
    /// <param name="loadStatistics">Receives what this rank's loads needed and read.</param>
    /// <param name="heartbeatInterval">How often the agent tells the run grain it is alive; null: every 5 seconds (the silo counts a rank
    /// missing after <c>Runs:RankMissingAfter</c>, 15 s by default).</param>
    public static async Task<RunAgent> JoinAsync(IGrainFactory grains, RunId run, ICheckpointStore? store, int rank, int worldSize, long epoch,
        nn.Module model, IEnumerable<KeyValuePair<string, object>> checkpointables, ILogger? logger = null,
        Func<string, TensorLayout?>? modelLayouts = null, Formats.LoadStatistics? loadStatistics = null, TimeSpan? heartbeatInterval = null)
    {
        var backend = new ClusterBackend(grains, run, store ?? new GrantedStore(grains.GetGrain<ITrainingRunGrain>(run.Key), rank, epoch), rank, worldSize, epoch);
        var checkpointer = new Checkpointer(model, backend, checkpointables, logger) { ModelLayouts = modelLayouts, LoadStatistics = loadStatistics };
        var directive = await Transient.RetryAsync(() => backend.Grain.GetDirective(epoch, -1), DateTimeOffset.UtcNow + backend.Committer.CommitTimeout, CancellationToken.None).ConfigureAwait(false);
        return new RunAgent(checkpointer, backend, directive.Policy, new RankHeartbeats(backend.Grain, rank, worldSize, epoch, heartbeatInterval ?? RankHeartbeats.DefaultInterval, logger));
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
    /// <remarks>A numeric <c>loss</c> among <paramref name="extra"/> goes out with the next heartbeat (the console plots it).</remarks>
    public async Task StepAsync(long iteration, IReadOnlyDictionary<string, object?>? extra = null, CancellationToken cancellationToken = default)
    {
        _heartbeats.Stepped(iteration, extra?.GetValueOrDefault("loss") switch { double loss => loss, float loss => loss, _ => null });
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

    /// <summary>Stops the heartbeats: the run grain counts this rank missing after its limit unless the run has finished.</summary>
    public ValueTask DisposeAsync() => _heartbeats.DisposeAsync();
}
