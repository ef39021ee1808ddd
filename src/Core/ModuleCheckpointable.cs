using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Checkpointing.Core;

/// <summary>A module as a checkpointable (e.g. an EMA copy of the model); loads with fvcore's model rules.</summary>
internal sealed class ModuleCheckpointable(nn.Module module, ILogger logger) : ICheckpointable
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
