using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// A deep copy of a state tree with every tensor copied into fresh host memory, so training can
/// go on changing the originals while a background save writes the copy.
/// </summary>
internal static class HostSnapshot
{
    public static OrderedDictionary<string, object?> Copy(IReadOnlyDictionary<string, object?> tree)
    {
        var copy = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, value) in tree) copy.Add(key, CopyValue(value));
        return copy;
    }

    private static object? CopyValue(object? value) => value switch
    {
        Tensor t => t.device_type == DeviceType.CPU ? t.detach().clone() : t.detach().cpu(),
        IReadOnlyDictionary<string, object?> d => Copy(d),
        System.Collections.IDictionary d => Copy(d.Keys.Cast<object>().ToDictionary(k => Convert.ToString(k, System.Globalization.CultureInfo.InvariantCulture)!, k => d[k])),
        System.Collections.IList l when value is not string => l.Cast<object?>().Select(CopyValue).ToList(),
        _ => value,
    };

    public static void Dispose(object? value)
    {
        switch (value)
        {
            case Tensor t: t.Dispose(); break;
            case IReadOnlyDictionary<string, object?> d: foreach (var v in d.Values) Dispose(v); break;
            case List<object?> l: foreach (var v in l) Dispose(v); break;
        }
    }
}

/// <summary>A background (async) save failed; the checkpoint it was writing does not exist.</summary>
public sealed class CheckpointSaveFailedException(string message, Exception inner) : Exception(message, inner);
