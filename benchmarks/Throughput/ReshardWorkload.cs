using Checkpointing.Abstractions;
using Checkpointing.Core;
using Checkpointing.Formats;
using Checkpointing.Storage;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// Resharded loads against whole loads (docs/format.md#sharded-tensors-and-resharding): the same state saved by 4 ranks, each tensor [rows, 256] split by
/// rows, is loaded by 3 ranks (one after another, the time of all three) split by columns (the worst case: every row of a
/// chunk is a separate read, since reading the gaps would exceed the 5% allowance) or by rows (each rank reads one run
/// per chunk), against one load of the consolidated checkpoint of the same bytes. Everything is read from the page cache
/// (written just before), so the rows measure the cost of ranged reads, not the disk.
/// </summary>
public sealed class ReshardWorkload
{
    private const int SavedBy = 4;
    private const int LoadedBy = 3;
    private const long Columns = 256;

    private readonly FileSystemStore _store;
    private readonly CheckpointManifest _sharded;
    private readonly CheckpointManifest _consolidated;

    private ReshardWorkload(FileSystemStore store, CheckpointManifest sharded, CheckpointManifest consolidated)
    {
        (_store, _sharded, _consolidated) = (store, sharded, consolidated);
    }

    /// <summary>Bytes the three column-split loads read over the bytes their slices hold (last run).</summary>
    public double? ReadRatio { get; private set; }

    public static async Task<ReshardWorkload> CreateAsync(int tensors, long elements, string folder)
    {
        var store = new FileSystemStore(folder);
        var random = new Random(5);
        var shape = elements % Columns == 0 ? new[] { elements / Columns, Columns } : [elements];
        var whole = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        var sharded = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        for (var i = 0; i < tensors; i++)
        {
            var tensor = HostTensor.Allocate(TensorDType.F32, shape);
            random.NextBytes(tensor.Data);
            whole[$"t{i}"] = tensor;
            sharded[$"t{i}"] = HostTensorSlice.Parts(tensor, Enumerable.Range(0, SavedBy).Select(r => TensorLayout.Split(shape, 0, r, SavedBy)));
        }
        var consolidated = await NativeCheckpointWriter.WriteAsync(store, "consolidated", new CheckpointIdentity("bench", "consolidated", 0),
            new Dictionary<string, object?> { ["model"] = whole }, v => v as ITensorSource);
        var split = await NativeCheckpointWriter.WriteAsync(store, "sharded", new CheckpointIdentity("bench", "sharded", 0, SavedBy),
            new Dictionary<string, object?> { ["model"] = sharded }, v => v as ITensorSource, new NativeWriteOptions { ShardCount = SavedBy });
        return new ReshardWorkload(store, split, consolidated);
    }

    /// <summary>Three ranks, each loading its columns of every tensor.</summary>
    public async Task<double> ColumnsLoadAsync()
    {
        var statistics = new LoadStatistics();
        var seconds = await LoadAsync(LastDimension, statistics);
        ReadRatio = (double)statistics.BytesRead / statistics.BytesNeeded;
        return seconds;
    }

    /// <summary>
    /// Resident memory that one rank's column-split load adds at its peak, against the bytes of the slices it loads: the rest
    /// is the load's buffers, bounded by <see cref="ReadBufferBudget.Shared"/> whatever the size of the state.
    /// </summary>
    public async Task<(long PeakBytes, long SliceBytes)> PeakMemoryOfOneColumnsLoadAsync()
    {
        var statistics = new LoadStatistics();
        var options = SplitLoad(LastDimension, rank: 0, statistics);
        var before = ResidentMemory.CurrentBytes();
        ResidentMemory.ResetPeak();
        var state = await NativeCheckpointReader.LoadAsync(_store, "sharded", _sharded, TorchTensors.Allocate, options);
        var peak = ResidentMemory.PeakBytes() - before;
        Release(state);
        return (peak, statistics.BytesNeeded);
    }

    /// <summary>Three ranks, each loading its rows of every tensor.</summary>
    public Task<double> RowsLoadAsync() => LoadAsync(_ => 0, new LoadStatistics());

    private Task<double> LoadAsync(Func<long[], int> dimension, LoadStatistics statistics) => InterleavedPairs.Time(async () =>
    {
        for (var rank = 0; rank < LoadedBy; rank++)
            Release(await NativeCheckpointReader.LoadAsync(_store, "sharded", _sharded, TorchTensors.Allocate, SplitLoad(dimension, rank, statistics)));
    });

    /// <summary>Columns: a tensor's last dimension.</summary>
    private static int LastDimension(long[] shape) => shape.Length - 1;

    /// <summary>Rank <paramref name="rank"/> of <see cref="LoadedBy"/> loading every tensor split along <paramref name="dimension"/>.</summary>
    private static NativeLoadOptions SplitLoad(Func<long[], int> dimension, int rank, LoadStatistics statistics) =>
        new() { Layouts = (_, shape) => TensorLayout.Split(shape, dimension(shape), rank, LoadedBy), Statistics = statistics };

    public Task<double> ConsolidatedLoadAsync() => InterleavedPairs.Time(async () =>
        Release(await NativeCheckpointReader.LoadAsync(_store, "consolidated", _consolidated, TorchTensors.Allocate)));

    private static void Release(OrderedDictionary<string, object?> state)
    {
        foreach (var (_, value) in (OrderedDictionary<string, object?>)state["model"]!) (value as IDisposable)?.Dispose();
    }
}
