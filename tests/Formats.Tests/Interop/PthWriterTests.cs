using Checkpointing.TestSupport;
using System.Text.Json.Nodes;
using Checkpointing.Formats.Interop;
using Checkpointing.Formats.Interop.Torch;

namespace Checkpointing.Formats.Tests.Interop;

public sealed class PthWriterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pth-writer-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Torch_load_reads_back_the_same_tree_and_bytes()
    {
        var tree = SampleTree();
        var path = Path.Combine(_dir, "written.pth");

        PthWriter.Write(path, tree, AsTensor);

        var report = JsonNode.Parse(PythonTorch.Run(Path.Combine(AppContext.BaseDirectory, "Interop", "Scripts", "check_written.py"), path))!;
        Assert.Equal(ValueSummary.Of(tree), report["summary"]!.ToJsonString());
        Assert.Equal("[0]", report["compression"]!.ToJsonString()); // every record stored, none deflated
        Assert.True(report["tied"]!.GetValue<bool>(), "one tensor written twice should share its storage in torch");
    }

    [Fact]
    public void Our_reader_reads_back_what_our_writer_wrote()
    {
        var tree = SampleTree();
        using var file = new MemoryStream();

        PthWriter.Write(file, tree, AsTensor);
        file.Position = 0;

        Assert.Equal(ValueSummary.Of(tree), ValueSummary.Of(PthReader.Read(file, "memory.pth")));
    }

    [Fact]
    public void A_tensor_source_that_writes_the_wrong_length_fails_the_write()
    {
        var tree = new OrderedDictionary<string, object?> { ["t"] = new Chunked(Random(TensorDType.F32, 4), lieBy: -1) };

        var error = Assert.Throws<InvalidOperationException>(() => PthWriter.Write(new MemoryStream(), tree, AsTensor));

        Assert.Contains("wrote 15 bytes instead of 16", error.Message);
    }

    [Fact]
    public void Values_a_pth_cannot_hold_are_refused_with_their_path()
    {
        var tree = new OrderedDictionary<string, object?> { ["a"] = new List<object?> { DateTime.Now } };

        var error = Assert.Throws<ArgumentException>(() => PthWriter.Write(new MemoryStream(), tree, AsTensor));

        Assert.Contains("'a/0'", error.Message);
    }

    /// <summary>Every kind of value, tensors both as <see cref="HostTensor"/> and as a streaming source.</summary>
    private static OrderedDictionary<string, object?> SampleTree()
    {
        var tied = Random(TensorDType.F32, 3, 2);
        var model = new PythonOrderedDict
        {
            ["conv.weight"] = Random(TensorDType.F32, 2, 3, 3, 3),
            ["conv.bias"] = new Chunked(Random(TensorDType.F32, 2)),
            ["bn.num_batches_tracked"] = Random(TensorDType.I64),
            ["half"] = Random(TensorDType.F16, 4, 4),
            ["bf16"] = Random(TensorDType.BF16, 5),
            ["mask"] = new HostTensor(TensorDType.BOOL, [3], [1, 0, 1]),
            ["f64"] = Random(TensorDType.F64, 2),
            ["i32"] = Random(TensorDType.I32, 3),
            ["i16"] = Random(TensorDType.I16, 3),
            ["i8"] = Random(TensorDType.I8, 3),
            ["u8"] = Random(TensorDType.U8, 2, 2),
            ["empty"] = Random(TensorDType.F32, 0, 3),
        };
        return new OrderedDictionary<string, object?>
        {
            ["model"] = model,
            ["optimizer"] = new OrderedDictionary<string, object?>
            {
                ["state"] = new OrderedDictionary<object, object?>
                {
                    [0L] = new OrderedDictionary<string, object?> { ["momentum_buffer"] = Random(TensorDType.F32, 2, 3, 3, 3) },
                    [1L] = new OrderedDictionary<string, object?> { ["step"] = 10L },
                },
                ["param_groups"] = new List<object?>
                {
                    new OrderedDictionary<string, object?> { ["lr"] = 0.02, ["nesterov"] = false, ["name"] = null, ["params"] = new List<object?> { 0L, 1L } },
                },
            },
            ["iteration"] = 99L,
            ["big"] = long.MaxValue,
            ["neg"] = -(1L << 40),
            ["floats"] = new List<object?> { 1.5, double.NaN, double.NegativeInfinity, -0.0, 1e300 },
            ["text"] = "h\u00e9llo \u2713",
            ["tied_a"] = tied,
            ["tied_b"] = tied,
        };
    }

    private static ITensorSource? AsTensor(object value) => value as ITensorSource;

    private static HostTensor Random(TensorDType dtype, params long[] shape)
    {
        var tensor = HostTensor.Allocate(dtype, shape);
        new Random(shape.Length * 31 + (int)dtype).NextBytes(tensor.Data);
        return tensor;
    }

    /// <summary>A tensor that is not a <see cref="HostTensor"/> and streams in odd-sized pieces, optionally writing the wrong length.</summary>
    private sealed class Chunked(HostTensor inner, int lieBy = 0) : ITensorSource
    {
        public TensorDType DType => inner.DType;
        public long[] Shape => inner.Shape;

        public void WriteTo(Stream destination)
        {
            var data = inner.Data.AsSpan(0, inner.Data.Length + lieBy);
            for (var i = 0; i < data.Length; i += 7) destination.Write(data[i..Math.Min(i + 7, data.Length)]);
        }
    }
}
