using Microsoft.Extensions.Logging;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Checkpointing.Core.Tests;

/// <summary>Collects log lines so tests can assert on fvcore's messages.</summary>
public sealed class ListLogger : ILogger
{
    public List<(LogLevel Level, string Message)> Entries { get; } = [];

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (Entries) Entries.Add((logLevel, formatter(state, exception)));
    }

    public IEnumerable<string> At(LogLevel level) => Entries.Where(e => e.Level == level).Select(e => e.Message);
}

public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("ckpt-test-").FullName;
    public string Sub(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() => Directory.Delete(Path, recursive: true);
}

public static class Models
{
    /// <summary>fvcore's test model: Sequential(Linear(2, 3), Linear(3, 1)).</summary>
    public static Sequential Small() => nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1));

    /// <summary>What DataParallel does to keys: the real model sits under a child named "module".</summary>
    public sealed class DataParallelLike : nn.Module<Tensor, Tensor>
    {
        private readonly Sequential module;

        public DataParallelLike(Sequential inner) : base(nameof(DataParallelLike))
        {
            module = inner;
            RegisterComponents();
        }

        public Sequential Inner => module;

        public override Tensor forward(Tensor input) => module.call(input);
    }

    public static void AssertSameParameters(nn.Module expected, nn.Module actual)
    {
        var e = expected.state_dict();
        var a = actual.state_dict();
        Assert.Equal(e.Keys.Order(), a.Keys.Order());
        foreach (var (key, tensor) in e)
        {
            Assert.False(ReferenceEquals(tensor, a[key]));
            Assert.True(BitEqual(tensor, a[key]), $"tensor {key} differs");
        }
    }

    /// <summary>Same dtype, shape and bytes: the bit-for-bit equality resume promises.</summary>
    public static bool BitEqual(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape)) return false;
        using var ca = a.detach().cpu().contiguous();
        using var cb = b.detach().cpu().contiguous();
        return ca.bytes.SequenceEqual(cb.bytes);
    }
}
