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
    private readonly Checkpointer? _memoryCheckpointer;
    private PeriodicCheckpointer _periodic;
    private PeriodicPolicy _policy;

    private RunAgent(Checkpointer checkpointer, ClusterBackend backend, PeriodicPolicy policy, RankHeartbeats heartbeats, Checkpointer? memoryCheckpointer)
    {
        Checkpointer = checkpointer;
        Backend = backend;
        _periodic = Periodic(policy);
        _policy = policy;
        _heartbeats = heartbeats;
        _memoryCheckpointer = memoryCheckpointer;
    }

    /// <summary>This rank's memory tier (docs/memory-tier.md), null when it joined without one.</summary>
    public MemoryTierBackend? MemoryTier => _memoryCheckpointer?.Backend as MemoryTierBackend;

    /// <summary>The checkpointer over the run: resume with <see cref="Checkpointer.ResumeOrLoadAsync"/>; a save outside the policy (<see cref="Checkpointer.SaveAsync"/>) is collective, so every rank calls it.</summary>
    public Checkpointer Checkpointer { get; }
    /// <summary>The cluster backend under <see cref="Checkpointer"/>: this rank's identity, the run grain, and the <see cref="ClusterBackend.Committer"/> to tune.</summary>
    public ClusterBackend Backend { get; }
    /// <summary>The run's periodic policy as of the last directive; <see cref="StepAsync"/> picks up changes made on the grain.</summary>
    public PeriodicPolicy Policy => _policy;

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
    /// <param name="memoryTier">This host's memory-tier holder and the token for holders: with it, the rank takes a memory checkpoint every
    /// memory period of the policy and <see cref="ResumeAsync"/> may resume from one; null: durable checkpoints only.</param>
    public static async Task<RunAgent> JoinAsync(IGrainFactory grains, RunId run, ICheckpointStore? store, int rank, int worldSize, long epoch,
        nn.Module model, IEnumerable<KeyValuePair<string, object>> checkpointables, ILogger? logger = null,
        Func<string, TensorLayout?>? modelLayouts = null, Formats.LoadStatistics? loadStatistics = null, TimeSpan? heartbeatInterval = null,
        MemoryTierOptions? memoryTier = null)
    {
        var backend = new ClusterBackend(grains, run, store ?? new GrantedStore(grains.GetGrain<ITrainingRunGrain>(run.Key), rank, epoch), rank, worldSize, epoch);
        var owned = checkpointables.ToList();
        var checkpointer = new Checkpointer(model, backend, owned, logger) { ModelLayouts = modelLayouts, LoadStatistics = loadStatistics };
        // The memory tier is a second checkpointer over the same model: its own snapshot arena (the stall is one host copy) and a
        // background write. A memory checkpoint waits for the previous one's write rather than skipping it: a rank that skipped
        // alone would leave that checkpoint incomplete for every rank.
        var memory = memoryTier is null ? null : new Checkpointer(model, new MemoryTierBackend(backend.Grain, run, rank, worldSize, epoch, memoryTier,
            new HolderClient(HolderClient.CreateHttp(), memoryTier.TenantToken), backend.Committer.CommitTimeout, logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance), owned, logger)
        {
            ModelLayouts = modelLayouts, LoadStatistics = loadStatistics, AsyncSave = true, WhenSaveBusy = BusySavePolicy.Wait,
        };
        var directive = await Transient.RetryAsync(() => backend.Grain.GetDirective(epoch, -1), DateTimeOffset.UtcNow + backend.Committer.CommitTimeout, CancellationToken.None).ConfigureAwait(false);
        if (memory?.Backend is MemoryTierBackend tier) await tier.AnnounceAsync(CancellationToken.None).ConfigureAwait(false);
        return new RunAgent(checkpointer, backend, directive.Policy, new RankHeartbeats(backend.Grain, rank, worldSize, epoch, heartbeatInterval ?? RankHeartbeats.DefaultInterval, logger), memory);
    }

    /// <summary>
    /// Resumes this rank from the newest complete tier (docs/memory-tier.md). The run grain plans it: a committed memory
    /// checkpoint newer than the durable tag is fetched from this rank's holders (its own host's first) and every rank must
    /// fetch and verify its snapshot before any loads it; otherwise, or when one rank cannot, every rank resumes from the
    /// durable tag (<see cref="Checkpointer.ResumeOrLoadAsync"/>), and the run's history says why. A rank without a memory
    /// tier always resumes from the durable tier, and so does its whole attempt.
    /// </summary>
    /// <returns>Where it resumed from and what the checkpoint held beyond the state, e.g. "iteration".</returns>
    public async Task<ResumeResult> ResumeAsync(CancellationToken cancellationToken = default)
    {
        var grain = Backend.Grain;
        var request = new ResumeRequest(Backend.Epoch, Backend.Rank, Backend.WorldSize, MemoryTier?.Host);
        var plan = await Transient.RetryAsync(() => grain.PlanResume(request), Deadline, cancellationToken).ConfigureAwait(false);
        if (plan.Memory is { } candidate)
        {
            var problem = MemoryTier is { } tier ? await tier.FetchAsync(candidate, cancellationToken).ConfigureAwait(false) : "this rank has no memory tier";
            var outcome = new ResumeOutcome(Backend.Epoch, Backend.Rank, Backend.WorldSize, candidate.Name, problem is null, problem);
            var deadline = Deadline;
            ResumeDecision decision;
            do decision = await Transient.RetryAsync(() => grain.AgreeResume(outcome, TimeSpan.FromSeconds(10)), deadline, cancellationToken).ConfigureAwait(false);
            while (!decision.Decided && DateTimeOffset.UtcNow < deadline);
            if (!decision.Decided) throw new TimeoutException($"Not every rank fetched its snapshot of {candidate.Name} within {Backend.Committer.CommitTimeout}; the attempt cannot agree where to resume.");
            if (decision.UseMemory && decision.Name != candidate.Name)
                throw new InvalidOperationException($"The attempt agreed on {decision.Name}, but this rank fetched {candidate.Name}; the attempt must start again.");
            if (decision.UseMemory)
            {
                var extra = await _memoryCheckpointer!.LoadAsync(_memoryCheckpointer.Backend!.PathOf(candidate.Name), null, cancellationToken).ConfigureAwait(false);
                await MemoryTier!.ForgetFetchedAsync().ConfigureAwait(false);
                return new ResumeResult(ResumeResult.Memory, candidate.Name, extra, decision.Reason);
            }
            if (MemoryTier is { } fetched) await fetched.ForgetFetchedAsync().ConfigureAwait(false);
            plan = plan with { Reason = decision.Reason };
        }
        var durable = await Checkpointer.HasCheckpointAsync(cancellationToken).ConfigureAwait(false) ? await Backend.GetLastAsync(cancellationToken).ConfigureAwait(false) : null;
        var state = await Checkpointer.ResumeOrLoadAsync("", resume: true, cancellationToken).ConfigureAwait(false);
        return new ResumeResult(durable is null ? ResumeResult.Scratch : ResumeResult.Durable, durable, state, plan.Reason);
    }

    private DateTimeOffset Deadline => DateTimeOffset.UtcNow + Backend.Committer.CommitTimeout;

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
        if (directive.Policy != _policy) (_periodic, _policy) = (Periodic(directive.Policy), directive.Policy);
        if (directive.CheckpointNow?.SaveAtIteration == iteration && !_policy.IsPeriodicStep(iteration))
        {
            await Checkpointer.SaveAsync(_policy.PeriodicName(iteration), StateAt(iteration, extra), cancellationToken).ConfigureAwait(false);
        }
        await _periodic.StepAsync(iteration, extra, cancellationToken).ConfigureAwait(false);
        if (_memoryCheckpointer is not null && _policy.IsMemoryStep(iteration))
        {
            await _memoryCheckpointer.SaveAsync(PeriodicPolicy.MemoryName(iteration), StateAt(iteration, extra), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>What a save outside the periodic checkpointer records beside the state: the iteration, then the step's extra entries.</summary>
    private static Dictionary<string, object?> StateAt(long iteration, IReadOnlyDictionary<string, object?>? extra)
    {
        var state = new Dictionary<string, object?>(StringComparer.Ordinal) { ["iteration"] = iteration };
        foreach (var (key, value) in extra ?? new Dictionary<string, object?>()) state[key] = value;
        return state;
    }

    /// <summary>Waits until the memory tier's background work for the last memory checkpoint (serialize, put, commit) is done; at once without a memory tier.</summary>
    public Task WaitForMemoryCheckpointAsync(CancellationToken cancellationToken = default) =>
        _memoryCheckpointer?.WaitForPendingSaveAsync(cancellationToken) ?? Task.CompletedTask;

    /// <summary>Lets the memory tier's background write finish, then stops the heartbeats: the run grain counts this rank missing after its limit unless the run has finished.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_memoryCheckpointer is not null) await _memoryCheckpointer.WaitForPendingSaveAsync().ConfigureAwait(false);
        await _heartbeats.DisposeAsync().ConfigureAwait(false);
    }
}
