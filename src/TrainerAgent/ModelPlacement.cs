using System.Text.Json.Nodes;
using Checkpointing.Abstractions;
using Checkpointing.Formats;
using Checkpointing.Formats.Interop.Detectron;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// Maps a native checkpoint's model tensors onto the model's own parameters and buffers, so that a
/// verified load reads their bytes straight into the model instead of into fresh tensors that are
/// then copied (no second copy of the model in memory, no page faults on fresh memory).
/// </summary>
/// <remarks>
/// Only what fvcore's name rules would load anyway is placed: the same name (after stripping a
/// DataParallel "module." prefix from every key), the same dtype and shape. Everything else, and the
/// second name of a tensor the model holds under two names, is allocated as before and handled by
/// <see cref="ModelStateLoader"/>; copying a placed tensor onto itself is a no-op. A checkpoint that
/// asks for detectron2's matching heuristics is never placed: its names are rewritten before loading.
/// </remarks>
internal static class ModelPlacement
{
    public static TensorPlacement? For(nn.Module model, CheckpointManifest manifest)
    {
        if (manifest.State[Checkpointer.ModelKey] is not JsonObject modelState) return null;
        if (manifest.State[DetectronCheckpointFile.MatchingHeuristicsKey] is JsonValue heuristics && heuristics.TryGetValue<bool>(out var on) && on) return null;

        var strip = modelState.Count > 0 && modelState.All(p => p.Key.StartsWith(ModelStateLoader.DataParallelPrefix, StringComparison.Ordinal));
        var modelTensors = model.state_dict();
        var placed = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var destinations = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, node) in modelState)
        {
            if (TensorKeyOf(node) is not { } key) continue;
            var modelName = strip ? name[ModelStateLoader.DataParallelPrefix.Length..] : name;
            if (modelTensors.TryGetValue(modelName, out var tensor) && placed.Add(tensor)) destinations[key] = tensor;
        }
        if (destinations.Count == 0) return null;
        return (key, dtype, shape) =>
            destinations.TryGetValue(key, out var tensor) && tensor.dtype == TorchTensors.ScalarTypeOrNull(dtype) && tensor.shape.SequenceEqual(shape)
                ? (tensor, new TorchTensorTarget(tensor))
                : null;
    }

    private static string? TensorKeyOf(JsonNode? node) =>
        node is JsonObject { Count: 1 } leaf && leaf[StateTree.TensorMarker] is JsonValue value && value.TryGetValue<string>(out var key) ? key : null;
}
