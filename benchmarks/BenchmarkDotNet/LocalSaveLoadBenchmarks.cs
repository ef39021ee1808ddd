using BenchmarkDotNet.Attributes;
using Checkpointing.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.Benchmarks;

/// <summary>
/// Saving and loading a float32 state dict through the local Checkpointer, against the reference
/// of writing/reading the same tensor bytes with a plain FileStream (fsync'd) in the same run:
/// BenchmarkDotNet's Ratio column is checkpointer time ÷ raw I/O time.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(launchCount: 1, warmupCount: 1, iterationCount: 5)]
public class LocalSaveLoadBenchmarks
{
    private const int Tensors = 64;
    private string _dir = "";
    private nn.Module _model = null!;
    private Checkpointer _checkpointer = null!;

    /// <summary>Elements per tensor: 4 Mi elements × 64 tensors × 4 bytes ≈ 1 GiB.</summary>
    [Params(1 << 20, 4 << 20)]
    public int ElementsPerTensor { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("ckpt-bench-").FullName;
        _model = new StateDictModule(Tensors, ElementsPerTensor);
        _checkpointer = new Checkpointer(_model, _dir);
        _checkpointer.Save("loadme");
        RawWrite();
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    [Benchmark(Baseline = true, Description = "raw FileStream write + fsync")]
    [BenchmarkCategory("save")]
    public void RawWrite()
    {
        using var file = new FileStream(Path.Combine(_dir, "raw.bin"), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        foreach (var (_, tensor) in _model.state_dict()) file.Write(tensor.bytes);
        file.Flush(flushToDisk: true);
    }

    [Benchmark(Description = "Checkpointer.Save (native, checksummed)")]
    [BenchmarkCategory("save")]
    public void CheckpointerSave() => _checkpointer.Save("bench");

    [Benchmark(Description = "raw FileStream read")]
    [BenchmarkCategory("load")]
    public long RawRead()
    {
        using var file = new FileStream(Path.Combine(_dir, "raw.bin"), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        long total = 0;
        foreach (var (_, tensor) in _model.state_dict()) total += file.Read(tensor.bytes);
        return total;
    }

    [Benchmark(Description = "Checkpointer.Load (verified)")]
    [BenchmarkCategory("load")]
    public void CheckpointerLoad() => _checkpointer.Load(Path.Combine(_dir, "loadme"));

    private sealed class StateDictModule : nn.Module
    {
        public StateDictModule(int count, int elements) : base(nameof(StateDictModule))
        {
            for (var i = 0; i < count; i++) register_buffer($"t{i:D2}", torch.randn(elements));
        }
    }
}
