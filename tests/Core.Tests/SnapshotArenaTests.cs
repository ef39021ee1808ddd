using static TorchSharp.torch;

namespace Checkpointing.Core.Tests;

public sealed class SnapshotArenaTests
{
    private static OrderedDictionary<string, object?> Tree(Tensor weight, Tensor step) => new()
    {
        ["model"] = new OrderedDictionary<string, object?> { ["w"] = weight },
        ["optimizer"] = new List<object?> { step, 3L },
    };

    [Fact]
    public void Later_copies_reuse_the_same_host_tensors_and_hold_the_new_values()
    {
        using var arena = new SnapshotArena();
        var weight = rand(64, 32);
        var step = tensor(1L);

        var first = arena.Copy(Tree(weight, step));
        var firstWeight = (Tensor)((IReadOnlyDictionary<string, object?>)first["model"]!)["w"]!;
        weight.add_(1.0);
        var second = arena.Copy(Tree(weight, step));
        var secondWeight = (Tensor)((IReadOnlyDictionary<string, object?>)second["model"]!)["w"]!;

        Assert.Same(firstWeight, secondWeight);
        Assert.False(ReferenceEquals(weight, secondWeight));
        Assert.True(Models.BitEqual(weight, secondWeight));
        Assert.Equal(3L, ((List<object?>)second["optimizer"]!)[1]);
        Assert.Equal(64 * 32 * 4 + 8, arena.Bytes);
    }

    [Fact]
    public void A_tensor_that_changes_shape_gets_a_new_slot_and_the_old_one_is_freed()
    {
        using var arena = new SnapshotArena();
        var first = (Tensor)((IReadOnlyDictionary<string, object?>)arena.Copy(Tree(rand(8), tensor(1L)))["model"]!)["w"]!;

        var second = (Tensor)((IReadOnlyDictionary<string, object?>)arena.Copy(Tree(rand(16), tensor(1L)))["model"]!)["w"]!;

        Assert.Equal([16L], second.shape);
        Assert.Throws<InvalidOperationException>(() => first.numel()); // disposed: the arena holds one copy of the state, not every shape it ever saw
        Assert.Equal(16 * 4 + 8, arena.Bytes);
    }
}
