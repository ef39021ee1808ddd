namespace Checkpointing.Core;

/// <summary>
/// Anything whose state a checkpoint carries besides the model (fvcore's "checkpointables"):
/// state dicts are trees of <see cref="OrderedDictionary{TKey,TValue}"/>, lists, strings, numbers,
/// booleans, nulls and TorchSharp tensors.
/// </summary>
public interface ICheckpointable
{
    /// <summary>
    /// The current state, as PyTorch's <c>state_dict()</c>; called at every save. The tensors may be the object's own: a save
    /// writes or copies them before it returns.
    /// </summary>
    OrderedDictionary<string, object?> StateDict();

    /// <summary>
    /// Restores the state a <see cref="StateDict"/> returned, as PyTorch's <c>load_state_dict</c>. Tensors arrive as fresh
    /// TorchSharp tensors on the CPU; numbers may come back as another type (an <see cref="int"/> saved loads from a native
    /// checkpoint as a <see cref="long"/>, a <see cref="float"/> as a <see cref="double"/>), so convert rather than cast.
    /// Throw when the state does not fit the object.
    /// </summary>
    /// <param name="state">This object's entry of the checkpoint.</param>
    void LoadStateDict(IReadOnlyDictionary<string, object?> state);
}
