using Checkpointing.Abstractions;
using Checkpointing.Core;
using Checkpointing.Formats;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// A checkpointer backend over a bare store (no run grain, no tag): what a cluster rank's data
/// plane does, without the control plane, so the benchmark times the store path alone.
/// </summary>
internal sealed class StoreBackend(ICheckpointStore store) : ICheckpointBackend
{
    private const string Scheme = "store://";

    public string PathOf(string name) => Scheme + name;

    public Task SaveAsync(string name, long? iteration, IReadOnlyDictionary<string, object?> data, NativeWriteOptions options, CancellationToken cancellationToken, double? stallSeconds = null) =>
        NativeCheckpointWriter.WriteAsync(store, name, new CheckpointIdentity("bench", name, iteration), data, TorchTensors.AsSource, options, cancellationToken);

    public Task<string?> GetLastAsync(CancellationToken cancellationToken) => Task.FromResult<string?>(null);

    public Task TagLastAsync(string name, CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<string>>([]);

    public bool AppliesRetention => true;
    public bool Incremental => false;

    public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken) => Task.FromResult(false);

    public Task<(ICheckpointStore Store, string Key)?> ResolveAsync(string path, CancellationToken cancellationToken) =>
        Task.FromResult<(ICheckpointStore, string)?>(path.StartsWith(Scheme, StringComparison.Ordinal) ? (store, path[Scheme.Length..]) : null);
}
