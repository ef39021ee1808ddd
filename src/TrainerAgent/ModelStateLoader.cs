using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// Loads a state dict into a module with fvcore's rules: strip a "module." prefix when every key
/// has it, skip keys whose shape differs, report missing / unexpected / incorrect-shape keys, and
/// do not call a parameter missing when another name for the same tensor was loaded.
/// </summary>
public static class ModelStateLoader
{
    public const string DataParallelPrefix = "module.";

    public static IncompatibleKeys Load(nn.Module model, IDictionary<string, object?> checkpointState)
    {
        var source = new OrderedDictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (key, value) in checkpointState)
        {
            source.Add(key, value as Tensor ?? throw new InvalidDataException($"Unsupported type found in checkpoint! {key}: {value?.GetType().FullName ?? "null"}"));
        }
        StripPrefixIfPresent(source, DataParallelPrefix);

        var modelState = model.state_dict();
        var incorrectShapes = new List<(string, long[], long[])>();
        foreach (var key in source.Keys.ToList())
        {
            if (!modelState.TryGetValue(key, out var target)) continue;
            var checkpointShape = source[key].shape;
            if (!checkpointShape.SequenceEqual(target.shape))
            {
                incorrectShapes.Add((key, checkpointShape, target.shape));
                source.Remove(key);
            }
        }

        var missing = new List<string>();
        using (no_grad())
        {
            foreach (var (key, target) in modelState)
            {
                if (source.TryGetValue(key, out var value)) target.copy_(value);
                else missing.Add(key);
            }
        }
        var unexpected = source.Keys.Where(k => !modelState.ContainsKey(k)).ToList();
        return new IncompatibleKeys(missing, unexpected, incorrectShapes);
    }

    /// <summary>Logs what <see cref="Load"/> reported, as fvcore does; aliases of loaded tensors are not reported missing.</summary>
    public static void Log(ILogger logger, nn.Module model, IncompatibleKeys keys)
    {
        foreach (var (key, checkpointShape, modelShape) in keys.IncorrectShapes)
        {
            logger.LogWarning("{Message}", IncompatibleKeyMessages.ShapeMismatch(key, checkpointShape, modelShape));
        }
        var missing = FilterReusedMissingKeys(model, keys.MissingKeys);
        if (missing.Count > 0) logger.LogWarning("{Message}", IncompatibleKeyMessages.Missing(missing));
        if (keys.UnexpectedKeys.Count > 0) logger.LogWarning("{Message}", IncompatibleKeyMessages.Unexpected(keys.UnexpectedKeys));
    }

    /// <summary>
    /// A tensor reachable under several names (a module registered twice, tied weights) is loaded
    /// when any one of its names is: drop the other names from the missing list.
    /// </summary>
    public static IReadOnlyList<string> FilterReusedMissingKeys(nn.Module model, IReadOnlyList<string> missingKeys)
    {
        var remaining = new HashSet<string>(missingKeys, StringComparer.Ordinal);
        // state_dict hands out the module's own tensor objects, so aliases are the same object.
        var namesByTensor = new Dictionary<Tensor, List<string>>(ReferenceEqualityComparer.Instance);
        foreach (var (name, tensor) in model.state_dict())
        {
            if (!namesByTensor.TryGetValue(tensor, out var names)) namesByTensor.Add(tensor, names = []);
            names.Add(name);
        }
        foreach (var names in namesByTensor.Values)
        {
            var missingAliases = names.Where(remaining.Contains).ToList();
            if (missingAliases.Count > 0 && missingAliases.Count < names.Count) remaining.ExceptWith(missingAliases);
        }
        return missingKeys.Where(remaining.Contains).ToList();
    }

    /// <summary>Removes <paramref name="prefix"/> from every key, but only if every key has it (DataParallel checkpoints).</summary>
    public static void StripPrefixIfPresent<T>(OrderedDictionary<string, T> state, string prefix)
    {
        if (state.Count == 0 || !state.Keys.All(k => k.StartsWith(prefix, StringComparison.Ordinal))) return;
        var entries = state.ToList();
        state.Clear();
        foreach (var (key, value) in entries) state.Add(key[prefix.Length..], value);
    }
}
