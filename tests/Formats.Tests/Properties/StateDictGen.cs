using CsCheck;

namespace Checkpointing.Formats.Tests.Properties;

/// <summary>One generated tensor: its bytes come from a seeded <see cref="Random"/>, so a printed case reproduces.</summary>
public sealed record GeneratedTensor(string Key, TensorDType DType, long[] Shape, int DataSeed)
{
    public HostTensor Create()
    {
        var tensor = HostTensor.Allocate(DType, Shape);
        new Random(DataSeed).NextBytes(tensor.Data);
        // Bytes other than 0 and 1 are not booleans torch can hold; every other dtype takes any bit pattern.
        if (DType == TensorDType.BOOL) for (var i = 0; i < tensor.Data.Length; i++) tensor.Data[i] &= 1;
        return tensor;
    }

    public override string ToString() => $"{Key}: {DType}[{string.Join(", ", Shape)}] seed {DataSeed}";
}

/// <summary>A random state dict (1–300 tensors: 0-d, empty and odd shapes, every dtype) and a shard count (1–8).</summary>
public sealed record GeneratedStateDict(GeneratedTensor[] Tensors, int Shards)
{
    public OrderedDictionary<string, object?> CreateModel()
    {
        var model = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var t in Tensors) model.Add(t.Key, t.Create());
        return model;
    }

    public override string ToString() => $"{Tensors.Length} tensors in {Shards} shards: {string.Join("; ", Tensors.Take(8))}{(Tensors.Length > 8 ? "; …" : "")}";
}

public static class StateDictGen
{
    /// <summary>Dtypes a <c>.pth</c> file can hold (torch 1.13 has no unsigned 16–64-bit or float8 storages).</summary>
    public static readonly TensorDType[] TorchDTypes =
        [TensorDType.F64, TensorDType.F32, TensorDType.F16, TensorDType.BF16, TensorDType.I64, TensorDType.I32, TensorDType.I16, TensorDType.I8, TensorDType.U8, TensorDType.BOOL];

    // Mostly small dimensions, with zeros (empty tensors) and odd primes; rank 0 gives scalars.
    private static readonly Gen<long> Dimension = Gen.Frequency(
        (6, Gen.Long[1, 6]),
        (1, Gen.Const(0L)),
        (2, Gen.OneOf(7L, 11L, 13L, 17L)));

    private static readonly Gen<long[]> Shape = Gen.Frequency(
        (2, Gen.Const(Array.Empty<long>())),
        (6, Dimension.Array[1, 3]),
        (1, Gen.Long[0, 2].Array[4, 6]));

    // Prefixes exercise the characters that need care: separators of the state tree ('/', '~'), dots, non-ASCII, spaces.
    private static readonly Gen<string> KeyPrefix = Gen.OneOf("layer.", "module.backbone.", "a/b~c.", "é ü.", "", "x~1/", "_");

    public static Gen<GeneratedStateDict> StateDicts(TensorDType[] dtypes, int maxTensors = 300) =>
        Gen.Select(Gen.Int[1, maxTensors], Gen.Int[1, 8], (count, shards) => (count, shards))
            .SelectMany(p => Gen.Select(KeyPrefix, Gen.OneOf(dtypes), Shape, Gen.Int)
                .Array[p.count]
                .Select(parts => new GeneratedStateDict(
                    parts.Select((t, i) => new GeneratedTensor($"{t.Item1}{i}", t.Item2, t.Item3, t.Item4)).ToArray(),
                    p.shards)));
}
