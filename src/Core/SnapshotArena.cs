using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.Core;

/// <summary>
/// Host memory for asynchronous saves, allocated on the first save and reused by every later one:
/// a snapshot is then a copy into memory that is already mapped (pinned when the tensor lives on
/// CUDA, so the device-to-host copy is a DMA), not an allocation plus page faults. The arena holds
/// exactly one host copy of the state's tensors: a slot is kept while a tensor of the same path,
/// dtype and shape is saved, replaced when that changes, and freed when the path disappears.
/// </summary>
/// <remarks>
/// Not thread-safe: the checkpointer copies into the arena only after the previous background write
/// finished. Synchronous saves of CUDA tensors use it too: device → pinned arena → storage.
/// </remarks>
internal sealed class SnapshotArena : IDisposable
{
    private Dictionary<string, Tensor> _slots = new(StringComparer.Ordinal);

    /// <summary>Bytes of host memory the arena holds now.</summary>
    public long Bytes { get; private set; }

    /// <summary>A deep copy of <paramref name="tree"/> whose tensors are arena slots holding copies of the originals.</summary>
    public OrderedDictionary<string, object?> Copy(IReadOnlyDictionary<string, object?> tree)
    {
        var used = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var copy = CopyTree(tree, "", used);
        foreach (var (path, slot) in _slots)
        {
            if (!used.TryGetValue(path, out var kept) || !ReferenceEquals(kept, slot)) slot.Dispose();
        }
        _slots = used;
        Bytes = used.Values.Sum(t => t.numel() * t.ElementSize);
        return copy;
    }

    /// <summary>Whether any tensor in <paramref name="tree"/> lives outside host memory (CUDA).</summary>
    public static bool HoldsDeviceTensors(object? tree) => tree switch
    {
        Tensor t => t.device_type != DeviceType.CPU,
        IReadOnlyDictionary<string, object?> d => d.Values.Any(HoldsDeviceTensors),
        System.Collections.IDictionary d => d.Values.Cast<object?>().Any(HoldsDeviceTensors),
        System.Collections.IList l when tree is not string => l.Cast<object?>().Any(HoldsDeviceTensors),
        _ => false,
    };

    private OrderedDictionary<string, object?> CopyTree(IReadOnlyDictionary<string, object?> tree, string path, Dictionary<string, Tensor> used)
    {
        var copy = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, value) in tree) copy.Add(key, CopyValue(value, $"{path}/{key}", used));
        return copy;
    }

    private object? CopyValue(object? value, string path, Dictionary<string, Tensor> used) => value switch
    {
        Tensor t => Snapshot(t, path, used),
        IReadOnlyDictionary<string, object?> d => CopyTree(d, path, used),
        System.Collections.IDictionary d => CopyTree(d.Keys.Cast<object>().ToDictionary(k => Convert.ToString(k, System.Globalization.CultureInfo.InvariantCulture)!, k => d[k]), path, used),
        System.Collections.IList l when value is not string => l.Cast<object?>().Select((item, i) => CopyValue(item, $"{path}/{i}", used)).ToList(),
        _ => value,
    };

    private Tensor Snapshot(Tensor source, string path, Dictionary<string, Tensor> used)
    {
        if (!_slots.TryGetValue(path, out var slot) || slot.dtype != source.dtype || !slot.shape.SequenceEqual(source.shape)
            || (source.device_type == DeviceType.CUDA && !slot.is_pinned()))
        {
            slot = Allocate(source);
        }
        used[path] = slot;
        using (no_grad()) slot.copy_(source);
        return slot;
    }

    /// <summary>A host tensor like <paramref name="source"/>, every page written once so later copies take no page faults.</summary>
    private static Tensor Allocate(Tensor source)
    {
        var slot = TorchTensors.HostStaging(source);
        slot.zero_();
        return slot;
    }

    public void Dispose()
    {
        foreach (var slot in _slots.Values) slot.Dispose();
        _slots.Clear();
        Bytes = 0;
    }
}
