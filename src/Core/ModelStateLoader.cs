using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.Core;

/// <summary>
/// Loads a state dict into a module with fvcore's rules: strip a "module." prefix when every key
/// has it, skip keys whose shape differs, report missing / unexpected / incorrect-shape keys, and
/// do not call a parameter missing when another name for the same tensor was loaded.
/// </summary>
internal static class ModelStateLoader
{
    public const string DataParallelPrefix = "module.";

    /// <summary>fvcore's model loading: every checkpoint tensor whose name and shape match is copied into the model.</summary>
    /// <param name="model">The module to load into; its tensors are updated in place.</param>
    /// <param name="checkpointState">The checkpoint's model entry: state-dict name → TorchSharp tensor (a "module." prefix on every key is stripped).</param>
    /// <param name="takeOwnership">The caller hands its tensors over and never uses them again (a checkpointer's freshly read
    /// state): a model tensor may then take over a loaded tensor's memory instead of copying it (see <see cref="CanAdopt"/>).</param>
    /// <returns>What did not load cleanly: missing, unexpected and incorrect-shape keys.</returns>
    /// <exception cref="InvalidDataException">a value in <paramref name="checkpointState"/> is not a tensor</exception>
    public static IncompatibleKeys Load(nn.Module model, IDictionary<string, object?> checkpointState, bool takeOwnership = false)
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
        // A loaded tensor stored under two names must not become the memory of two untied model tensors.
        var adopted = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        using (no_grad())
        {
            foreach (var (key, target) in modelState)
            {
                if (!source.TryGetValue(key, out var value)) missing.Add(key);
                else if (takeOwnership && CanAdopt(target, value) && adopted.Add(value)) target.set_(value);
                else target.copy_(value);
            }
        }
        var unexpected = source.Keys.Where(k => !modelState.ContainsKey(k)).ToList();
        return new IncompatibleKeys(missing, unexpected, incorrectShapes);
    }

    /// <summary>
    /// Whether the model's tensor can take over the loaded tensor's memory (<c>set_</c>) instead of copying it: both are
    /// dense CPU tensors of one dtype and shape, and the model's tensor owns its whole storage (it is no view into a larger
    /// buffer, which would stop seeing the loaded values). The model keeps its tensor objects, so optimizers and tied names
    /// (one object under two names) still see them; a load then costs no second pass over the model's bytes.
    /// </summary>
    private static bool CanAdopt(Tensor target, Tensor loaded) =>
        target.device_type == DeviceType.CPU && loaded.device_type == DeviceType.CPU && target.dtype == loaded.dtype
        && target.is_contiguous() && loaded.is_contiguous() && target.storage_offset() == 0 && loaded.storage_offset() == 0
        && StorageElements(target) == target.numel() && StorageElements(loaded) == loaded.numel();

    /// <summary>Elements in the tensor's storage, for the dtypes TorchSharp exposes storages of; null for the others (they are copied).</summary>
    private static long? StorageElements(Tensor tensor)
    {
        switch (tensor.dtype)
        {
            case ScalarType.Float32: { using var storage = tensor.storage<float>(); return storage.Count; }
            case ScalarType.Float64: { using var storage = tensor.storage<double>(); return storage.Count; }
            case ScalarType.Int64: { using var storage = tensor.storage<long>(); return storage.Count; }
            case ScalarType.Int32: { using var storage = tensor.storage<int>(); return storage.Count; }
            case ScalarType.Byte: { using var storage = tensor.storage<byte>(); return storage.Count; }
            default: return null;
        }
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
