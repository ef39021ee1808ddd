using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.TestSupport;

/// <summary>
/// Deterministic model weights drawn from a generator of the test's own. libtorch's global generator is shared by every test
/// running in the process: seeding it and then building a model races with any other class that draws from it at the same
/// time, so two models "built from the same seed" can differ. Tests fill their models here instead, and compare a model with
/// a <see cref="Snapshot"/> of itself rather than with a model rebuilt from the seed.
/// </summary>
public static class SeededWeights
{
    /// <summary>Overwrites every floating-point parameter and buffer of <paramref name="module"/> with uniform values in [-0.5, 0.5).</summary>
    public static T Fill<T>(T module, long seed) where T : nn.Module
    {
        using var generator = new torch.Generator((ulong)seed);
        using var noGrad = torch.no_grad();
        foreach (var (_, tensor) in module.state_dict())
        {
            if (!tensor.is_floating_point()) continue;
            using var values = torch.rand(tensor.shape, dtype: tensor.dtype, generator: generator);
            tensor.copy_(values.sub_(0.5));
        }
        return module;
    }

    /// <summary>The bytes of every tensor of the module's state dict, by name.</summary>
    public static Dictionary<string, byte[]> Snapshot(nn.Module module) =>
        module.state_dict().ToDictionary(p => p.Key, p =>
        {
            using var host = p.Value.detach().cpu().contiguous();
            return host.bytes.ToArray();
        }, StringComparer.Ordinal);

    /// <summary>The names of the tensors whose bytes differ from <paramref name="snapshot"/> (empty when the module is as it was).</summary>
    public static IReadOnlyList<string> ChangedSince(nn.Module module, IReadOnlyDictionary<string, byte[]> snapshot)
    {
        var now = Snapshot(module);
        return snapshot.Keys.Union(now.Keys)
            .Where(name => !snapshot.TryGetValue(name, out var before) || !now.TryGetValue(name, out var after) || !before.AsSpan().SequenceEqual(after))
            .Order(StringComparer.Ordinal).ToList();
    }
}
