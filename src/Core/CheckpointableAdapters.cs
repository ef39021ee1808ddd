using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Checkpointing.Core;

/// <summary>Turns the objects users hand to a <see cref="Checkpointer"/> into <see cref="ICheckpointable"/>s.</summary>
internal static class CheckpointableAdapters
{
    public static ICheckpointable Adapt(string key, object checkpointable, ILogger logger) => checkpointable switch
    {
        ICheckpointable c => c,
        nn.Module m => new ModuleCheckpointable(m, logger),
        optim.Optimizer o => new OptimizerCheckpointable(o),
        optim.lr_scheduler.LRScheduler s => new LRSchedulerCheckpointable(s),
        null => throw new ArgumentNullException(nameof(checkpointable), $"Checkpointable '{key}' is null."),
        _ => throw new ArgumentException(
            $"add_checkpointable needs an object with state: '{key}' is a {checkpointable.GetType().FullName}. " +
            "Pass a TorchSharp module, optimizer or LR scheduler, or implement ICheckpointable.", nameof(checkpointable)),
    };
}
