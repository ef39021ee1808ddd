using Checkpointing.Abstractions;
using Checkpointing.Formats;
using static TorchSharp.torch;

namespace Checkpointing.Core;

/// <summary>
/// Turns the layouts a user declares for model parameters and buffers (by state-dict name) into layouts by state path
/// for saves and loads (docs/format.md#sharded-tensors-and-resharding). An optimizer's per-parameter state (Adam's moments, SGD's momentum) follows its
/// parameter's layout when it has the parameter's shape; its other entries (step counts) stay whole.
/// </summary>
internal sealed class StateLayouts
{
    /// <summary>State path → layout of model tensors.</summary>
    private readonly Dictionary<string, TensorLayout> _model = new(StringComparer.Ordinal);

    /// <summary>Path of an optimizer's per-parameter entry ("KEY/state/I", every field under it) → where it is in the state and its parameter's layout.</summary>
    private readonly Dictionary<string, OptimizerEntry> _optimizerEntries = new(StringComparer.Ordinal);

    private sealed record OptimizerEntry(string Checkpointable, string Index, TensorLayout Layout);

    public StateLayouts(nn.Module model, Func<string, TensorLayout?> modelLayouts, IReadOnlyDictionary<string, ICheckpointable> checkpointables)
    {
        foreach (var (name, _) in model.state_dict())
        {
            if (modelLayouts(name) is { } layout) _model[StateTree.Child(Checkpointer.ModelKey, name)] = layout;
        }
        // A tied weight is one parameter under several names: the first name stands for it.
        var names = new Dictionary<IntPtr, string>();
        foreach (var (name, parameter) in model.named_parameters()) names.TryAdd(parameter.Handle, name);
        foreach (var (key, checkpointable) in checkpointables)
        {
            if (checkpointable is not OptimizerCheckpointable optimizer) continue;
            var parameters = optimizer.Parameters;
            for (var i = 0; i < parameters.Count; i++)
            {
                if (!names.TryGetValue(parameters[i].Handle, out var name) || modelLayouts(name) is not { } layout) continue;
                var index = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                _optimizerEntries[StateTree.Child(StateTree.Child(key, "state"), index)] = new OptimizerEntry(key, index, layout);
            }
        }
    }

    /// <summary>Layouts of the tensors in a state about to be saved: a parameter's optimizer state follows it when its shape is the parameter's local shape.</summary>
    public Func<string, TensorLayout?> ForSave(IReadOnlyDictionary<string, object?> data)
    {
        var map = new Dictionary<string, TensorLayout>(_model, StringComparer.Ordinal);
        foreach (var (path, (checkpointable, index, layout)) in _optimizerEntries)
        {
            if (data.GetValueOrDefault(checkpointable) is not IReadOnlyDictionary<string, object?> optimizer
                || optimizer.GetValueOrDefault("state") is not IReadOnlyDictionary<string, object?> states
                || states.GetValueOrDefault(index) is not IReadOnlyDictionary<string, object?> fields) continue;
            foreach (var (field, value) in fields)
            {
                if (value is Tensor t && t.shape.SequenceEqual(layout.LocalShape)) map[StateTree.Child(path, field)] = layout;
            }
        }
        return map.GetValueOrDefault;
    }

    /// <summary>
    /// The layout to load a stored tensor into, given its global shape: the declared one when the shapes agree; null (whole)
    /// otherwise, so that a model tensor of another shape is reported as fvcore reports it, and a step count stays whole.
    /// </summary>
    public TensorLayout? ForLoad(string path, long[] globalShape)
    {
        var layout = _model.GetValueOrDefault(path) ?? (path.LastIndexOf('/') is var slash and > 0 ? _optimizerEntries.GetValueOrDefault(path[..slash])?.Layout : null);
        return layout is not null && layout.GlobalShape.SequenceEqual(globalShape) ? layout : null;
    }
}
