using Checkpointing.Formats;
using Checkpointing.Storage;
using ZstdSharp;
using static TorchSharp.torch;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// Lossless compression of tensors (docs/compression.md) against zstd alone on the same raw bytes, one core each: trained
/// weights (an MLP trained with Adam in this process, converted to f32, bf16 and f16) and random bytes. Each row times an
/// encode or a decode; the ratios and per-core speeds are reported beside. The save rows write the trained bf16 weights
/// through a link of 500 MB/s (a blob link), compressed and not.
/// </summary>
public sealed class CompressionWorkload
{
    /// <summary>A blob link's write speed: the bound for "compression costs no time".</summary>
    public const double LinkBytesPerSecond = 500e6;

    private const int Shards = 8;

    private readonly Dictionary<string, (TensorDType DType, byte[] Raw)> _data = [];
    private readonly Dictionary<string, byte[]> _ours = [];
    private readonly Dictionary<string, byte[][]> _zstd = [];
    private readonly List<HostTensor> _trainedBf16 = [];
    private int _saves;

    /// <summary>The data sets by name ("bf16_trained", "f32_random", …).</summary>
    public IEnumerable<string> DataSets => _data.Keys;

    /// <param name="bytes">bytes of f32 weights to train (rounded to whole 1024 × 1024 layers, at least one)</param>
    /// <param name="steps">Adam steps</param>
    public static CompressionWorkload Create(long bytes, int steps, Action<string> say)
    {
        const int Width = 1024;
        var layers = (int)Math.Clamp(bytes / (Width * Width * 4L), 1, 64);
        say($"compression: training a {layers}-layer {Width}-wide MLP for {steps} Adam steps ({layers * Width * Width * 4L / (1 << 20)} MiB of f32 weights)");
        manual_seed(11);
        var modules = new List<(string, nn.Module<Tensor, Tensor>)>();
        for (var i = 0; i < layers; i++)
        {
            modules.Add(($"fc{i}", nn.Linear(Width, Width)));
            if (i < layers - 1) modules.Add(($"act{i}", nn.Tanh()));
        }
        using var model = nn.Sequential(modules);
        using var optimizer = optim.Adam(model.parameters(), lr: 1e-3);
        for (var step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            var input = randn(32, Width);
            var loss = nn.functional.mse_loss(model.forward(input), input.sin());
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
        }
        var workload = new CompressionWorkload();
        using (no_grad())
        {
            var weights = model.parameters().Where(p => p.dim() == 2).ToList();
            foreach (var (name, type, dtype) in new[] { ("f32", ScalarType.Float32, TensorDType.F32), ("bf16", ScalarType.BFloat16, TensorDType.BF16), ("f16", ScalarType.Float16, TensorDType.F16) })
            {
                var parts = weights.Select(w => { using var converted = w.to_type(type).contiguous(); return converted.bytes.ToArray(); }).ToList();
                workload._data[$"{name}_trained"] = (dtype, parts.SelectMany(p => p).ToArray());
                var random = new byte[workload._data[$"{name}_trained"].Raw.Length];
                new Random(12).NextBytes(random);
                workload._data[$"{name}_random"] = (dtype, random);
                if (dtype == TensorDType.BF16) workload._trainedBf16.AddRange(parts.Select(p => new HostTensor(TensorDType.BF16, [Width, p.Length / 2 / Width], p)));
            }
        }
        return workload;
    }

    public Task<double> EncodeAsync(string set) => InterleavedPairs.Time(() =>
    {
        var (dtype, raw) = _data[set];
        _ours[set] = BytegroupCodec.Encode(raw, dtype, maxParallel: 1);
    });

    public Task<double> DecodeAsync(string set)
    {
        var (dtype, raw) = _data[set];
        var encoded = _ours.TryGetValue(set, out var done) ? done : _ours[set] = BytegroupCodec.Encode(raw, dtype, maxParallel: 1);
        var into = new byte[raw.Length];
        Array.Fill(into, (byte)1); // touched before the clock starts
        return InterleavedPairs.Time(() => BytegroupCodec.Decode(encoded, dtype, into, set, maxParallel: 1));
    }

    /// <summary>zstd alone on the raw bytes, at the same level and in frames of the same size, on one core.</summary>
    public Task<double> ZstdEncodeAsync(string set) => InterleavedPairs.Time(() => _zstd[set] = ZstdFrames(_data[set].Raw));

    public Task<double> ZstdDecodeAsync(string set)
    {
        var raw = _data[set].Raw;
        var frames = _zstd.TryGetValue(set, out var done) ? done : _zstd[set] = ZstdFrames(raw);
        var into = new byte[raw.Length];
        Array.Fill(into, (byte)1);
        return InterleavedPairs.Time(() =>
        {
            using var decompressor = new Decompressor();
            for (var i = 0; i < frames.Length; i++)
                decompressor.Unwrap(frames[i], into.AsSpan(i * BytegroupCodec.DefaultFrameBytes, Math.Min(BytegroupCodec.DefaultFrameBytes, raw.Length - i * BytegroupCodec.DefaultFrameBytes)));
        });
    }

    private static byte[][] ZstdFrames(byte[] raw)
    {
        using var compressor = new Compressor(BytegroupCodec.DefaultLevel);
        return Enumerable.Range(0, (raw.Length + BytegroupCodec.DefaultFrameBytes - 1) / BytegroupCodec.DefaultFrameBytes)
            .Select(i => compressor.Wrap(raw.AsSpan(i * BytegroupCodec.DefaultFrameBytes, Math.Min(BytegroupCodec.DefaultFrameBytes, raw.Length - i * BytegroupCodec.DefaultFrameBytes))).ToArray())
            .ToArray();
    }

    /// <summary>
    /// The trained bf16 weights saved through a 500 MB/s link, compressed or not, in <see cref="Shards"/> shards written a core's
    /// worth at a time: more shards than cores, so that one shard's upload overlaps the encoding of the next (a shard's header,
    /// written first, needs the length of every tensor in it).
    /// </summary>
    public Task<double> SaveThroughLinkAsync(bool compressed)
    {
        var store = new RateLimitedStore(new MemoryStore(), LinkBytesPerSecond);
        var name = $"save-{++_saves}";
        var state = new OrderedDictionary<string, object?> { ["model"] = new OrderedDictionary<string, object?>(_trainedBf16.Select((t, i) => KeyValuePair.Create($"fc{i}.weight", (object?)t))) };
        var options = new NativeWriteOptions { ShardCount = Shards, MaxParallelShards = Environment.ProcessorCount, Compression = compressed ? new TensorCompression() : null };
        return InterleavedPairs.Time(() => NativeCheckpointWriter.WriteAsync(store, name, new CheckpointIdentity("bench", name, 0), state, v => v as HostTensor, options));
    }

    /// <summary>For each data set timed: raw over stored bytes (ours stores raw when encoding does not pay) and zstd's, and the speeds per core.</summary>
    public Dictionary<string, (double Ours, double Zstd, long RawBytes)> Ratios() => _data.Where(d => _ours.ContainsKey(d.Key) || _zstd.ContainsKey(d.Key)).ToDictionary(
        d => d.Key,
        d => (Ratio(d.Value.Raw.Length, _ours.GetValueOrDefault(d.Key)?.Length), Ratio(d.Value.Raw.Length, _zstd.GetValueOrDefault(d.Key)?.Sum(f => (long)f.Length)), (long)d.Value.Raw.Length));

    private static double Ratio(long raw, long? stored) => stored is { } bytes ? (double)raw / Math.Min(raw, bytes) : double.NaN;
}
