using static TorchSharp.torch;

namespace Checkpointing.Core;

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
