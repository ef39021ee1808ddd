using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace Checkpointing.Core;

/// <summary>
/// Builds checkpointers from the host's <see cref="CheckpointingOptions"/>, logging through the host's
/// <see cref="ILoggerFactory"/>. A model exists only once the training code has built it, so the host
/// holds this factory rather than a checkpointer.
/// </summary>
/// <param name="options">The settings, as <c>AddCheckpointing</c> bound and validated them.</param>
/// <param name="loggers">The host's loggers: each checkpointer logs under its type's category.</param>
public sealed class CheckpointerFactory(IOptions<CheckpointingOptions> options, ILoggerFactory loggers)
{
    /// <summary>A checkpointer of <paramref name="model"/> and <paramref name="checkpointables"/> into the configured save folder.</summary>
    /// <param name="model">The model whose state dict is saved under "model".</param>
    /// <param name="checkpointables">Other objects with state: optimizers, LR schedulers, <see cref="ICheckpointable"/>s, keyed by name.</param>
    public Checkpointer Create(nn.Module model, IEnumerable<KeyValuePair<string, object>>? checkpointables = null)
    {
        var settings = options.Value;
        return new Checkpointer(model, settings.SaveDir, saveToDisk: true, checkpointables, loggers.CreateLogger<Checkpointer>(),
            new LocalBackendOptions { Format = settings.Format, Incremental = settings.Incremental, LeftoverMinimumAge = settings.LeftoverMinimumAge })
        {
            AsyncSave = settings.AsyncSave,
        };
    }

    /// <summary>A periodic checkpointer over <paramref name="checkpointer"/> with the configured period, max_iter, max_to_keep and prefix.</summary>
    public PeriodicCheckpointer CreatePeriodic(Checkpointer checkpointer)
    {
        var settings = options.Value;
        return new PeriodicCheckpointer(checkpointer, settings.Period, settings.MaxIter, settings.MaxToKeep, settings.FilePrefix);
    }
}
