using Checkpointing.Abstractions;
using Checkpointing.Storage;
using CsCheck;

namespace Checkpointing.Formats.Tests.Properties;

/// <summary>
/// Issue 11: tensors saved in one random layout (uneven splits along any dimension, flat FSDP-style slices, empty
/// slices, 0-d scalars, every dtype width) and loaded in another land bit-exact, and each load part reads about the
/// bytes it needs. The expected slice is computed element by element from the global tensor, independently of the
/// run and overlap arithmetic under test.
/// </summary>
public sealed class ReshardingProperties : IDisposable
{
    private static readonly TensorDType[] DTypes = [TensorDType.F64, TensorDType.F32, TensorDType.BF16, TensorDType.F16, TensorDType.I64, TensorDType.U8, TensorDType.BOOL];

    private readonly string _dir = Directory.CreateTempSubdirectory("reshard-props-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Any_saved_layout_loads_into_any_other_layout_bit_exact_reading_about_the_bytes_needed()
    {
        var store = new FileSystemStore(_dir);
        var case_ = 0;
        Gen.Int.Sample(seed =>
        {
            var random = new Random(seed);
            var name = $"c{Interlocked.Increment(ref case_)}";
            var tensors = Enumerable.Range(0, random.Next(1, 5)).Select(i => RandomTensor(random, i)).Append(Scalar(random)).ToList();
            var saveParts = random.Next(1, 6);
            var saveLayouts = tensors.ToDictionary(t => t.Key, t => RandomLayouts(random, t.Global.Shape, saveParts));
            var state = new OrderedDictionary<string, object?>(StringComparer.Ordinal)
            {
                ["model"] = tensors.ToDictionary(t => t.Key, t => (object?)new TensorParts(t.Global.Shape,
                    saveLayouts[t.Key].Select(l => (l, (ITensorSource)Slice(t.Global, l))).ToList()), StringComparer.Ordinal),
            };
            NativeCheckpointWriter.WriteAsync(store, name, new CheckpointIdentity("props", name, 1, saveParts), state, v => v as ITensorSource,
                new NativeWriteOptions { ShardCount = saveParts }).GetAwaiter().GetResult();
            var manifest = NativeCheckpointReader.ReadManifestAsync(store, name).GetAwaiter().GetResult();
            // Every part is a chunk, even a whole one (replicas of it are written once); a tensor with no element stays whole.
            var slicedKeys = tensors.Where(t => t.Global.Data.Length > 0).Select(t => $"model/{t.Key}");
            Assert.Equal(slicedKeys.Order(), manifest.Sharded.Keys.Order());

            // A whole load assembles every sharded tensor.
            var whole = (OrderedDictionary<string, object?>)NativeCheckpointReader.LoadAsync(store, name, manifest, HostTensor.Allocator).GetAwaiter().GetResult()["model"]!;
            foreach (var t in tensors) AssertBytes(t.Global.Data, (HostTensor)whole[t.Key]!, $"{t.Key} whole, saved as {Describe(saveLayouts[t.Key])}");

            var loadParts = random.Next(1, 6);
            var loadLayouts = tensors.ToDictionary(t => $"model/{t.Key}", t => RandomLayouts(random, t.Global.Shape, loadParts));
            for (var part = 0; part < loadParts; part++)
            {
                var statistics = new LoadStatistics();
                var p = part;
                var loaded = (OrderedDictionary<string, object?>)NativeCheckpointReader.LoadAsync(store, name, manifest, HostTensor.Allocator,
                    new NativeLoadOptions { Layouts = (key, _) => loadLayouts[key][p], Statistics = statistics }).GetAwaiter().GetResult()["model"]!;
                foreach (var t in tensors)
                {
                    var layout = loadLayouts[$"model/{t.Key}"][p];
                    AssertBytes(Slice(t.Global, layout).Data, (HostTensor)loaded[t.Key]!, $"{t.Key} as {layout}, saved as {Describe(saveLayouts[t.Key])}");
                }
                Assert.True(statistics.BytesRead <= 1.1 * statistics.BytesNeeded, $"part {p} read {statistics.BytesRead} bytes for {statistics.BytesNeeded} needed");
                Assert.True(statistics.BytesRead >= statistics.BytesNeeded);
            }
            Directory.Delete(Path.Combine(_dir, name), recursive: true);
        }, iter: 150, threads: 1);
    }

    [Fact]
    public void Runs_from_any_element_are_the_runs_that_end_after_it()
    {
        Gen.Int.Sample(seed =>
        {
            var random = new Random(seed);
            var shape = Enumerable.Range(0, random.Next(0, 5)).Select(_ => (long)random.Next(0, 6)).ToArray();
            foreach (var layout in RandomLayouts(random, shape, random.Next(1, 5)))
            {
                var all = layout.Runs().ToList();
                Assert.Equal(layout.RunCount, all.Count);
                Assert.Equal(layout.LocalElements, all.Sum(r => r.Length));
                var from = random.NextInt64(-1, layout.GlobalElements + 2);
                Assert.Equal(all.SkipWhile(r => r.GlobalStart + r.Length <= from), layout.RunsFrom(from));
            }
        }, iter: 500);
    }

    private sealed record Generated(string Key, HostTensor Global);

    private static Generated RandomTensor(Random random, int index)
    {
        var shape = Enumerable.Range(0, random.Next(1, 4)).Select(_ => (long)(random.Next(8) == 0 ? 0 : random.Next(1, 9))).ToArray();
        var dtype = DTypes[random.Next(DTypes.Length)];
        var data = new byte[TensorDTypes.ByteLength(dtype, shape)];
        random.NextBytes(data);
        return new Generated($"layer{index}.weight", new HostTensor(dtype, shape, data));
    }

    /// <summary>A 0-d tensor: every layout of it is whole (replicated).</summary>
    private static Generated Scalar(Random random)
    {
        var data = new byte[4];
        random.NextBytes(data);
        return new Generated("scale", new HostTensor(TensorDType.F32, [], data));
    }

    /// <summary>One layout per part: whole (replicated: only the first part saves it), uneven random cuts along one dimension, or a flat split.</summary>
    private static TensorLayout[] RandomLayouts(Random random, long[] shape, int parts)
    {
        var kind = shape.Length == 0 ? 0 : random.Next(3);
        switch (kind)
        {
            case 1:
                var dim = random.Next(shape.Length);
                var cuts = RandomCuts(random, shape[dim], parts);
                return Enumerable.Range(0, parts).Select(p =>
                {
                    var offsets = new long[shape.Length];
                    var local = (long[])shape.Clone();
                    offsets[dim] = cuts[p];
                    local[dim] = cuts[p + 1] - cuts[p];
                    return TensorLayout.Box(shape, offsets, local);
                }).ToArray();
            case 2:
                var flat = RandomCuts(random, shape.Aggregate(1L, (a, b) => a * b), parts);
                return Enumerable.Range(0, parts).Select(p => TensorLayout.Flat(shape, flat[p], flat[p + 1] - flat[p])).ToArray();
            default:
                return Enumerable.Range(0, parts).Select(_ => TensorLayout.Whole(shape)).ToArray();
        }
    }

    /// <summary>parts + 1 sorted cut points from 0 to size (equal neighbours make empty slices).</summary>
    private static long[] RandomCuts(Random random, long size, int parts)
    {
        var inner = Enumerable.Range(0, parts - 1).Select(_ => random.NextInt64(size + 1)).Order();
        return [0, .. inner, size];
    }

    /// <summary>The elements of <paramref name="layout"/> copied from the global tensor one at a time, row-major in the local tensor.</summary>
    private static HostTensor Slice(HostTensor global, TensorLayout layout)
    {
        var size = global.DType.ElementSize();
        var local = HostTensor.Allocate(global.DType, layout.LocalShape);
        var count = layout.LocalElements;
        var globalStrides = TensorLayout.Strides(global.Shape);
        for (long i = 0; i < count; i++)
        {
            long globalIndex;
            if (layout.IsFlat)
            {
                globalIndex = layout.FlatOffset!.Value + i;
            }
            else
            {
                globalIndex = 0;
                var rest = i;
                for (var d = layout.LocalShape.Length - 1; d >= 0; d--)
                {
                    var coordinate = rest % layout.LocalShape[d];
                    rest /= layout.LocalShape[d];
                    globalIndex += (layout.Offsets![d] + coordinate) * globalStrides[d];
                }
            }
            global.Data.AsSpan((int)(globalIndex * size), size).CopyTo(local.Data.AsSpan((int)(i * size), size));
        }
        return local;
    }

    private static void AssertBytes(byte[] expected, HostTensor actual, string what) =>
        Assert.True(expected.AsSpan().SequenceEqual(actual.Data), $"{what}: the loaded bytes differ");

    private static string Describe(TensorLayout[] layouts) => string.Join("; ", layouts.Select(l => l.ToString()));
}
