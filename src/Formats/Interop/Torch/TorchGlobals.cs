using Checkpointing.Formats.Interop.Numpy;
using Checkpointing.Formats.Interop.Pickle;

namespace Checkpointing.Formats.Interop.Torch;

/// <summary>A storage as <c>torch.save</c> records it: a zip record of raw little-endian elements.</summary>
internal sealed record TorchStorage(string Key, TensorDType DType, long Numel, byte[] Bytes);

/// <summary>The torch globals a <c>torch.save</c> pickle names: typed storage classes and tensor rebuild functions.</summary>
internal static class TorchGlobals
{
    /// <summary>The typed storage classes torch.save still names (for compatibility) in persistent ids.</summary>
    public static IReadOnlyDictionary<string, TensorDType> StorageTypes { get; } = new Dictionary<string, TensorDType>(StringComparer.Ordinal)
    {
        ["torch.DoubleStorage"] = TensorDType.F64,
        ["torch.FloatStorage"] = TensorDType.F32,
        ["torch.HalfStorage"] = TensorDType.F16,
        ["torch.BFloat16Storage"] = TensorDType.BF16,
        ["torch.LongStorage"] = TensorDType.I64,
        ["torch.IntStorage"] = TensorDType.I32,
        ["torch.ShortStorage"] = TensorDType.I16,
        ["torch.CharStorage"] = TensorDType.I8,
        ["torch.ByteStorage"] = TensorDType.U8,
        ["torch.BoolStorage"] = TensorDType.BOOL,
    };

    /// <summary>torch.load also unpickles numpy arrays that a checkpoint carries besides its tensors.</summary>
    public static PickleGlobals Table { get; } = new PickleGlobals(PickleGlobals.PythonData).With(NumpyGlobals.All).With(CreateTorch());

    private static IEnumerable<PyGlobal> CreateTorch()
    {
        foreach (var name in StorageTypes.Keys)
            yield return new PyGlobal(name, (_, _) => throw new PickleDataException($"{name} is only supported inside a persistent id", "storage"));
        yield return new PyGlobal("torch._utils._rebuild_tensor_v2", RebuildTensor);
        yield return new PyGlobal("torch._utils._rebuild_parameter", (args, _) => RebuildParameter(args));
        yield return new PyGlobal("torch._utils._rebuild_parameter_with_state", (args, _) => RebuildParameter(args));
        yield return new PyGlobal("torch.storage._load_from_bytes", (_, _) => throw new PickleDataException(
            "the checkpoint holds storages in the legacy torch.save format (torch < 1.6), which is not supported; re-save it with torch>=1.6", "legacy format"));
    }

    /// <summary><c>_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])</c>.</summary>
    private static HostTensor RebuildTensor(object?[] args, BudgetMeter meter)
    {
        if (args is not [TorchStorage storage, long offset, object?[] size, object?[] stride, bool, _, ..] || args.Length > 7)
            throw new PickleDataException("_rebuild_tensor_v2 called with unsupported arguments", "tensor view");
        var sizes = Longs(size, "size");
        var strides = Longs(stride, "stride");
        if (sizes.Length != strides.Length) throw new PickleDataException($"tensor view has {sizes.Length} sizes but {strides.Length} strides", "tensor view");
        var last = StridedView.LastElement(offset, sizes, strides);
        if (offset < 0 || offset > storage.Numel || last is null || last >= storage.Numel)
            throw new PickleDataException(
                $"tensor view (offset {offset}, size [{string.Join(", ", sizes)}], stride [{string.Join(", ", strides)}]) reaches outside storage '{storage.Key}' of {storage.Numel} elements",
                "tensor view");
        return StridedView.Materialize(storage.Bytes, storage.DType, offset, sizes, strides, meter, $"tensor view of storage '{storage.Key}'");
    }

    /// <summary><c>_rebuild_parameter(data, requires_grad, backward_hooks[, state])</c>: a Parameter is its tensor here.</summary>
    private static HostTensor RebuildParameter(object?[] args) =>
        args is [HostTensor data, bool, ..] && args.Length <= 4
            ? data
            : throw new PickleDataException("_rebuild_parameter called with unsupported arguments", "tensor view");

    private static long[] Longs(object?[] items, string what) =>
        items.Select(i => i is long n and >= 0 ? n : throw new PickleDataException($"tensor {what} holds a non-integer or negative value", "tensor view")).ToArray();
}
