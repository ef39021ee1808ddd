using static TorchSharp.torch;

namespace Checkpointing.Core;

/// <summary>Seeds of randomness: carry libtorch's CPU generator state so that dropout and sampling resume identically.</summary>
public sealed class RngStateCheckpointable : ICheckpointable
{
    /// <summary>libtorch's CPU generator state, a byte tensor under "cpu_rng_state". CUDA generators are not carried.</summary>
    public OrderedDictionary<string, object?> StateDict() => new(StringComparer.Ordinal) { ["cpu_rng_state"] = random.get_rng_state() };

    /// <summary>Restores libtorch's CPU generator, so that the random numbers drawn next are those the saved run drew next.</summary>
    /// <param name="state">What <see cref="StateDict"/> saved.</param>
    /// <exception cref="InvalidDataException">"cpu_rng_state" is missing or not a tensor</exception>
    public void LoadStateDict(IReadOnlyDictionary<string, object?> state)
    {
        if (state.TryGetValue("cpu_rng_state", out var value) && value is Tensor t) random.set_rng_state(t);
        else throw new InvalidDataException("RNG state entry 'cpu_rng_state' is missing or not a tensor.");
    }
}
