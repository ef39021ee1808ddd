using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// Joins runs as a rank from a host: the host's cluster client, checkpoint store and loggers, so that
/// training code asks only for the run, its rank and its model. Registered by <c>AddCheckpointingCluster</c>.
/// </summary>
/// <param name="client">The host's Orleans client; every call carries the configured tenant token.</param>
/// <param name="loggers">The host's loggers: each agent logs under <see cref="RunAgent"/>'s category.</param>
/// <param name="store">Where this rank writes its shards; null (none configured): what the run grain grants.</param>
public sealed class RunAgents(IClusterClient client, ILoggerFactory loggers, ICheckpointStore? store = null)
{
    /// <summary>Joins <paramref name="run"/> as <paramref name="rank"/> of <paramref name="worldSize"/> in attempt <paramref name="epoch"/>, as <see cref="RunAgent.JoinAsync"/>.</summary>
    /// <param name="run">The run, "tenant/run".</param>
    /// <param name="rank">This rank, from 0.</param>
    /// <param name="worldSize">The ranks of the job.</param>
    /// <param name="epoch">The attempt the job launcher started (<c>StartAttempt</c>); a newer attempt fences this one.</param>
    /// <param name="model">The model (this rank's part of it when tensors are sharded).</param>
    /// <param name="checkpointables">Other objects with state (optimizers, LR schedulers, RNG), keyed by name.</param>
    public Task<RunAgent> JoinAsync(RunId run, int rank, int worldSize, long epoch, nn.Module model, IEnumerable<KeyValuePair<string, object>> checkpointables) =>
        RunAgent.JoinAsync(client, run, store, rank, worldSize, epoch, model, checkpointables, loggers.CreateLogger<RunAgent>());

    /// <summary>The grain of <paramref name="run"/>, for what an agent does not do itself (creating the run, starting an attempt).</summary>
    public ITrainingRunGrain Run(RunId run) => client.GetGrain<ITrainingRunGrain>(run.Key);
}
