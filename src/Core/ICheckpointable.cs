namespace Checkpointing.Core;

/// <summary>
/// Anything whose state a checkpoint carries besides the model (fvcore's "checkpointables"):
/// state dicts are trees of <see cref="OrderedDictionary{TKey,TValue}"/>, lists, strings, numbers,
/// booleans, nulls and TorchSharp tensors.
/// </summary>
public interface ICheckpointable
{
    OrderedDictionary<string, object?> StateDict();

    void LoadStateDict(IReadOnlyDictionary<string, object?> state);
}
