using System.Runtime.InteropServices;
using Checkpointing.Formats.Interop;
using Checkpointing.Formats.Interop.Detectron;
using Checkpointing.Formats.Interop.Pickle;
using Checkpointing.Formats.Interop.Torch;

namespace Checkpointing.Formats.Tests.Interop;

/// <summary>Files written by Python (torch.save, pickle) read by our readers, value for value.</summary>
[Collection(InteropCollection.Name)]
public sealed class PythonFileTests(InteropFixtures fixtures)
{
    [Fact]
    public void Nested_torch_checkpoint_reads_exactly_as_torch_load_sees_it()
    {
        var loaded = PthReader.Read(fixtures.PathOf("nested.pth"));

        Assert.Equal(fixtures.Expected("nested"), ValueSummary.Of(loaded));
    }

    [Fact]
    public void Nested_checkpoint_maps_to_the_value_model()
    {
        var root = Assert.IsType<OrderedDictionary<string, object?>>(PthReader.Read(fixtures.PathOf("nested.pth")));

        var model = Assert.IsType<PythonOrderedDict>(root["model"]);
        Assert.Equal(7L, BitConverter.ToInt64(Assert.IsType<HostTensor>(model["bn.num_batches_tracked"]).Data));
        var optimizerState = Assert.IsType<OrderedDictionary<object, object?>>(Dict(root["optimizer"])["state"]);
        Assert.Equal([0L, 1L], optimizerState.Keys);
        Assert.Equal(10L, Dict(optimizerState[1L])["step"]);
        Assert.Equal(new List<object?> { 0.9, 0.999 }, Dict(Assert.IsType<List<object?>>(Dict(root["optimizer"])["param_groups"])[0])["betas"]);
        Assert.Equal(12345L, root["iteration"]);
        Assert.Equal(Enumerable.Range(0, 2500).Select(i => $"k{i}"), Dict(root["many"]).Keys);
    }

    [Fact]
    public void Views_are_materialized_from_their_storage_offset_and_strides()
    {
        var views = Dict(Dict(PthReader.Read(fixtures.PathOf("nested.pth")))["views"]);
        // base = arange(24).reshape(4, 6)
        Assert.Equal([6f, 7, 8, 9, 10, 11], Floats(views["row"]));
        Assert.Equal([2f, 8, 14, 20], Floats(views["col"]));
        Assert.Equal([6L, 4L], Assert.IsType<HostTensor>(views["transposed"]).Shape);
        Assert.Equal([0f, 6, 12, 18, 1, 7], Floats(views["transposed"]).Take(6));
        Assert.Equal([15f, 16, 17, 21, 22, 23], Floats(views["block"]));
        Assert.Equal([0f, 1, 2, 0, 1, 2], Floats(views["expanded"]));
    }

    [Fact]
    public void Legacy_torch_save_format_is_refused_with_advice()
    {
        var error = Assert.Throws<CheckpointFormatException>(() => PthReader.Read(fixtures.PathOf("legacy.pth")));

        Assert.Equal("legacy format", error.Check);
        Assert.Contains("torch>=1.6", error.Message);
    }

    [Theory]
    [InlineData("c2_p2")]
    [InlineData("c2_p5")]
    [InlineData("d2zoo")]
    public void Pickles_with_numpy_arrays_read_exactly_as_python_sees_them(string name)
    {
        var loaded = SafeUnpickler.LoadFile(fixtures.PathOf(name + ".pkl"));

        Assert.Equal(fixtures.Expected(name), ValueSummary.Of(loaded));
    }

    [Theory]
    [InlineData("c2_p2.pkl")]
    [InlineData("c2_p5.pkl")]
    public void Caffe2_pickle_becomes_a_model_without_momentum_blobs(string file)
    {
        var checkpoint = DetectronCheckpointFile.Load(fixtures.PathOf(file));

        Assert.Equal("Caffe2", checkpoint[DetectronCheckpointFile.AuthorKey]);
        Assert.Equal(true, checkpoint[DetectronCheckpointFile.MatchingHeuristicsKey]);
        var model = Dict(checkpoint[DetectronCheckpointFile.ModelKey]);
        Assert.Contains("conv1_w", model.Keys);
        Assert.DoesNotContain("conv1_w_momentum", model.Keys);
        Assert.Equal([0L, 1, 2, 3], MemoryMarshal.Cast<byte, int>(Assert.IsType<HostTensor>(model["i32_be"]).Data).ToArray().Select(i => (long)i));
    }

    [Fact]
    public void Detectron2_zoo_pickle_is_returned_as_is()
    {
        var checkpoint = DetectronCheckpointFile.Load(fixtures.PathOf("d2zoo.pkl"));

        Assert.Equal("Detectron2 Model Zoo", checkpoint[DetectronCheckpointFile.AuthorKey]);
        Assert.False(checkpoint.ContainsKey(DetectronCheckpointFile.MatchingHeuristicsKey));
        Assert.Equal([2L, 3, 1, 1], Assert.IsType<HostTensor>(Dict(checkpoint["model"])["backbone.bottom_up.stem.conv1.weight"]).Shape);
    }

    [Fact]
    public void Pycls_checkpoint_becomes_its_model_state_without_batch_counters()
    {
        Assert.Equal(fixtures.Expected("pycls"), ValueSummary.Of(PthReader.Read(fixtures.PathOf("pycls.pyth"))));

        var checkpoint = DetectronCheckpointFile.Load(fixtures.PathOf("pycls.pyth"));

        Assert.Equal("pycls", checkpoint[DetectronCheckpointFile.AuthorKey]);
        Assert.Equal(["stem.conv.weight", "stem.bn.weight"], Dict(checkpoint["model"]).Keys);
    }

    [Fact]
    public void Torch_checkpoint_with_a_model_key_is_returned_as_is()
    {
        var checkpoint = DetectronCheckpointFile.Load(fixtures.PathOf("nested.pth"));

        Assert.IsType<PythonOrderedDict>(checkpoint[DetectronCheckpointFile.ModelKey]);
        Assert.Equal(12345L, checkpoint["iteration"]);
        Assert.False(checkpoint.ContainsKey(DetectronCheckpointFile.MatchingHeuristicsKey));
    }

    [Theory]
    [InlineData("hostile_system.pkl", "posix.system", "system.marker")]
    [InlineData("hostile_eval.pkl", "builtins.eval", "eval.marker")]
    [InlineData("hostile_class.pkl", "__main__.Unknown", null)]
    public void Pickles_naming_other_globals_are_refused_before_anything_runs(string file, string global, string? marker)
    {
        var error = Assert.Throws<CheckpointFormatException>(() => SafeUnpickler.LoadFile(fixtures.PathOf(file)));

        Assert.Equal("pickle global", error.Check);
        Assert.Contains($"'{global}'", error.Message);
        if (marker is not null) Assert.False(File.Exists(fixtures.PathOf(marker)), $"{marker} exists: the payload ran");
        Assert.True(File.Exists(fixtures.PathOf("proof.marker")), "the fixture's payload is not live (Python did not run it)");
    }

    [Fact]
    public void Torch_file_with_a_hostile_reduce_is_refused()
    {
        var error = Assert.Throws<CheckpointFormatException>(() => PthReader.Read(fixtures.PathOf("hostile.pth")));

        Assert.Equal("pickle global", error.Check);
        Assert.Contains("'posix.system'", error.Message);
        Assert.False(File.Exists(fixtures.PathOf("pth.marker")));
    }

    private static OrderedDictionary<string, object?> Dict(object? value) => Assert.IsAssignableFrom<OrderedDictionary<string, object?>>(value);

    private static float[] Floats(object? tensor) => MemoryMarshal.Cast<byte, float>(Assert.IsType<HostTensor>(tensor).Data).ToArray();
}
