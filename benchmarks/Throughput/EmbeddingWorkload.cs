using Checkpointing.Core;
using Checkpointing.Formats;
using static TorchSharp.torch;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// An embedding table of 128-wide float32 rows, 1% of whose rows change between two saves (uniformly at random: the worst case
/// for blocks), saved three ways into folders of their own (docs/compression.md#block-reuse): incremental with block reuse
/// (ours, for tables from 1 MiB on, so that small runs use blocks too), a full save, and a whole-tensor incremental save. Each
/// way has its own copy of the table and the same sequence of row updates, made outside the timing, and keeps only its latest
/// checkpoint (deleting by reference). Each way saved once before the timed repetitions, so every timed block save has an
/// earlier map to build on.
/// </summary>
public sealed class EmbeddingWorkload : IDisposable
{
    /// <summary>Columns of the table: rows of 512 bytes.</summary>
    public const int Columns = 128;

    /// <summary>Rows changed per period.</summary>
    public const double TouchedFraction = 0.01;

    private readonly Way _blocks, _full, _wholeIncremental;

    /// <param name="rows">rows of the table (1M rows: 512 MiB)</param>
    /// <param name="folder">where the three ways save</param>
    public EmbeddingWorkload(long rows, string folder)
    {
        Rows = rows;
        using var initial = randn(rows, Columns);
        _blocks = new Way(initial, Path.Combine(folder, "blocks"), new LocalBackendOptions { Incremental = true, BlockReuse = new BlockReuse { MinBytes = 1 << 20 } });
        _full = new Way(initial, Path.Combine(folder, "full"), new LocalBackendOptions());
        _wholeIncremental = new Way(initial, Path.Combine(folder, "whole-incremental"), new LocalBackendOptions { Incremental = true });
    }

    /// <summary>Rows of the table.</summary>
    public long Rows { get; }

    /// <summary>Bytes of the table.</summary>
    public long TableBytes => Rows * Columns * 4;

    public Task<double> BlocksSaveAsync() => _blocks.SaveAsync();
    public Task<double> FullSaveAsync() => _full.SaveAsync();
    public Task<double> WholeIncrementalSaveAsync() => _wholeIncremental.SaveAsync();

    /// <summary>A whole load of the latest block-mapped checkpoint: its blocks assembled from every checkpoint they are in.</summary>
    public Task<double> BlocksLoadAsync() => _blocks.LoadAsync();

    /// <summary>A whole load of the latest full checkpoint of the same table.</summary>
    public Task<double> FullLoadAsync() => _full.LoadAsync();

    /// <summary>Median bytes a timed block save wrote (shards and manifest) over the median of the full saves; null before both ran.</summary>
    public double? WrittenRatioVsFull => Ratio(_blocks, _full);

    /// <summary>The same over the whole-tensor incremental saves.</summary>
    public double? WrittenRatioVsWholeIncremental => Ratio(_blocks, _wholeIncremental);

    /// <summary>The most bytes one timed block save wrote over the median of the full saves (a save that drops sources writes their blocks again).</summary>
    public double? MaxWrittenRatioVsFull => _blocks.Written.Count == 0 || _full.Written.Count == 0 ? null : _blocks.Written.Max() / Median(_full.Written);

    private static double? Ratio(Way ours, Way reference) =>
        ours.Written.Count == 0 || reference.Written.Count == 0 ? null : Median(ours.Written) / Median(reference.Written);

    private static double Median(List<long> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2.0;
    }

    public void Dispose()
    {
        _blocks.Dispose();
        _full.Dispose();
        _wholeIncremental.Dispose();
    }

    /// <summary>One way of saving: its table, checkpointer and row updates (the same seed for every way).</summary>
    private sealed class Way : IDisposable
    {
        private readonly TorchSharp.Modules.Embedding _table;
        private readonly Checkpointer _checkpointer;
        private readonly Random _rows = new(2024);
        private int _saves;

        public Way(Tensor initial, string folder, LocalBackendOptions options)
        {
            _table = nn.Embedding(initial.shape[0], Columns);
            using (no_grad()) _table.weight!.copy_(initial);
            _checkpointer = new Checkpointer(_table, folder, options: options);
            _checkpointer.Save($"save-{_saves}"); // the first save of the table, untimed
        }

        /// <summary>Bytes of shards and manifest each timed save wrote.</summary>
        public List<long> Written { get; } = [];

        public async Task<double> SaveAsync()
        {
            Touch();
            var name = $"save-{++_saves}";
            var seconds = await InterleavedPairs.Time(() => _checkpointer.Save(name));
            var store = new Storage.FileSystemStore(_checkpointer.SaveDir);
            var manifest = await NativeCheckpointReader.ReadManifestAsync(store, name);
            Written.Add(manifest.WrittenBytes + (await store.GetEntryAsync(Abstractions.StoreLayout.ManifestKey(name)))!.Length);
            await _checkpointer.Backend!.DeleteAsync($"save-{_saves - 1}", CancellationToken.None);
            return seconds;
        }

        public async Task<double> LoadAsync()
        {
            using var target = nn.Embedding(_table.weight!.shape[0], Columns);
            return await InterleavedPairs.Time(() => new Checkpointer(target).Load(Path.Combine(_checkpointer.SaveDir!, $"save-{_saves}")));
        }

        /// <summary>Adds noise to 1% of the rows, chosen uniformly at random.</summary>
        private void Touch()
        {
            var weight = _table.weight!;
            var count = (int)Math.Max(1, weight.shape[0] * TouchedFraction);
            var rows = Enumerable.Range(0, count).Select(_ => _rows.NextInt64(weight.shape[0])).ToArray();
            using var _ = no_grad();
            using var index = tensor(rows);
            using var noise = randn(count, Columns);
            weight.index_add_(0, index, noise, 0.01);
        }

        public void Dispose() => _table.Dispose();
    }
}
