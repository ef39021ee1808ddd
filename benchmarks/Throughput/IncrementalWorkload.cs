using Checkpointing.Core;
using static TorchSharp.torch;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// Incremental saves against full saves of the same state (docs/format.md#incremental-checkpoints): on a state whose every tensor
/// changed since the last save (what hashing costs when nothing can be reused) and on one whose first 90%
/// of tensors are frozen (what reuse saves). Each side saves into its own folder, changing the state first
/// outside the timing, and deletes its previous checkpoint after the timing, by reference.
/// </summary>
public sealed class IncrementalWorkload : IDisposable
{
    private readonly nn.Module _changing;
    private readonly nn.Module _frozen;
    private readonly Saver _changedIncremental, _changedFull, _frozenIncremental, _frozenFull;

    /// <param name="changing">The state to change entirely before every save (the I/O workload's model).</param>
    public IncrementalWorkload(nn.Module changing, int tensors, long elements, int shards, string folder)
    {
        _changing = changing;
        _frozen = new BenchModel(tensors, elements);
        var write = new Formats.NativeWriteOptions { ShardCount = shards };
        Saver Make(nn.Module model, string name, bool incremental) =>
            new(new Checkpointer(model, Path.Combine(folder, name), options: new() { Incremental = incremental }) { WriteOptions = write });
        _changedIncremental = Make(_changing, "changed-incremental", true);
        _changedFull = Make(_changing, "changed-full", false);
        _frozenIncremental = Make(_frozen, "frozen-incremental", true);
        _frozenFull = Make(_frozen, "frozen-full", false);
    }

    public Task<double> ChangedIncrementalAsync() => _changedIncremental.SaveAsync(() => Touch(_changing, 1.0));
    public Task<double> ChangedFullAsync() => _changedFull.SaveAsync(() => Touch(_changing, 1.0));
    public Task<double> FrozenIncrementalAsync() => _frozenIncremental.SaveAsync(() => Touch(_frozen, 0.1));
    public Task<double> FrozenFullAsync() => _frozenFull.SaveAsync(() => Touch(_frozen, 0.1));

    /// <summary>Changes the last <paramref name="fraction"/> of the tensors (the first ones stay frozen).</summary>
    private static void Touch(nn.Module model, double fraction)
    {
        using var _ = no_grad();
        var buffers = model.buffers().ToList();
        foreach (var buffer in buffers.Skip(buffers.Count - (int)Math.Ceiling(buffers.Count * fraction))) buffer.add_(1);
    }

    /// <summary>Bytes the last incremental save with 90% frozen wrote, over the bytes of its state (null before one ran).</summary>
    public double? FrozenWrittenRatio => _frozenIncremental.LastWrittenRatio;

    public void Dispose() => _frozen.Dispose();

    private sealed class Saver(Checkpointer checkpointer)
    {
        private int _saves;

        public double? LastWrittenRatio { get; private set; }

        public async Task<double> SaveAsync(Action change)
        {
            change();
            var name = $"save-{++_saves}";
            var seconds = await InterleavedPairs.Time(() => checkpointer.Save(name));
            var manifest = await Formats.NativeCheckpointReader.ReadManifestAsync(new Storage.FileSystemStore(checkpointer.SaveDir), name);
            LastWrittenRatio = (double)manifest.WrittenBytes / manifest.TensorBytes;
            if (_saves > 1) await checkpointer.Backend!.DeleteAsync($"save-{_saves - 1}", CancellationToken.None);
            return seconds;
        }
    }
}
