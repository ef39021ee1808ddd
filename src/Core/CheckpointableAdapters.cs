using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.Core;

/// <summary>Turns the objects users hand to a <see cref="Checkpointer"/> into <see cref="ICheckpointable"/>s.</summary>
public static class CheckpointableAdapters
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

/// <summary>A module as a checkpointable (e.g. an EMA copy of the model); loads with fvcore's model rules.</summary>
public sealed class ModuleCheckpointable(nn.Module module, ILogger logger) : ICheckpointable
{
    public static OrderedDictionary<string, object?> StateOf(nn.Module module)
    {
        var state = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, tensor) in module.state_dict()) state.Add(key, tensor);
        return state;
    }

    public OrderedDictionary<string, object?> StateDict() => StateOf(module);

    public void LoadStateDict(IReadOnlyDictionary<string, object?> state)
    {
        var keys = ModelStateLoader.Load(module, state.ToDictionary());
        ModelStateLoader.Log(logger, module, keys);
    }
}

/// <summary>Seeds of randomness: carry libtorch's CPU generator state so that dropout and sampling resume identically.</summary>
public sealed class RngStateCheckpointable : ICheckpointable
{
    public OrderedDictionary<string, object?> StateDict() => new(StringComparer.Ordinal) { ["cpu_rng_state"] = random.get_rng_state() };

    public void LoadStateDict(IReadOnlyDictionary<string, object?> state)
    {
        if (state.TryGetValue("cpu_rng_state", out var value) && value is Tensor t) random.set_rng_state(t);
        else throw new InvalidDataException("RNG state entry 'cpu_rng_state' is missing or not a tensor.");
    }
}
