using System.Text.Json.Nodes;
using Checkpointing.Tests.Shared;
using Microsoft.Extensions.Logging;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Checkpointing.Core.Tests;

/// <summary>detectron2's DetectionCheckpointer behaviour: model-zoo formats, query strings, heuristics, path handlers.</summary>
public sealed class DetectionCheckpointerTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>A detector-shaped model: a nested backbone stem, a box head, a classifier and a pixel_mean buffer.</summary>
    private sealed class DetectorLike : nn.Module<Tensor, Tensor>
    {
        private readonly Sequential backbone = nn.Sequential(("stem", nn.Sequential(("conv1", nn.Conv2d(3, 4, 3)))));
        private readonly Sequential box_head = nn.Sequential(("fc1", nn.Linear(8, 5)));
        private readonly Linear cls_score = nn.Linear(5, 3);

        public DetectorLike() : base(nameof(DetectorLike))
        {
            RegisterComponents();
            register_buffer("pixel_mean", zeros(3));
        }

        public override Tensor forward(Tensor input) => cls_score.call(box_head.call(backbone.call(input).flatten(1)));
    }

    /// <summary>detectron2's test model: block1.layer1 and block2.layer2.</summary>
    private static Sequential Blocks() => nn.Sequential(
        ("block1", nn.Sequential(("layer1", nn.Linear(2, 3)))),
        ("block2", nn.Sequential(("layer2", nn.Linear(3, 1)))));

    private static Tensor Param(nn.Module model, string key) => model.state_dict()[key];

    private static void WritePth(string path, IReadOnlyDictionary<string, object?> data)
    {
        using var stream = File.Create(path);
        TorchFiles.Write(stream, data);
    }

    [Fact]
    public void Loads_a_Python_made_Caffe2_pkl_renaming_blobs_and_moving_the_background_class()
    {
        var pkl = _temp.Sub("model_final.pkl");
        var blobs = JsonNode.Parse(PythonScripts.Run("write_c2_pkl", pkl))!.AsObject();
        Tensor Blob(string name) => tensor(blobs[name]!["values"]!.AsArray().Select(v => (float)(double)v!).ToArray())
            .reshape(blobs[name]!["shape"]!.AsArray().Select(d => (long)d!).ToArray());
        var model = new DetectorLike();
        var logger = new ListLogger();

        var extra = new DetectionCheckpointer(model, logger: logger).Load(pkl);

        Assert.True(Models.BitEqual(Blob("conv1_w"), Param(model, "backbone.stem.conv1.weight")));
        Assert.True(Models.BitEqual(Blob("conv1_b"), Param(model, "backbone.stem.conv1.bias")));
        Assert.True(Models.BitEqual(Blob("fc6_w"), Param(model, "box_head.fc1.weight")));
        Assert.True(Models.BitEqual(Blob("cls_score_w")[TensorIndex.Tensor(tensor(new long[] { 1, 2, 0 }))], Param(model, "cls_score.weight")));
        Assert.True(Models.BitEqual(Blob("cls_score_b")[TensorIndex.Tensor(tensor(new long[] { 1, 2, 0 }))], Param(model, "cls_score.bias")));
        Assert.Equal("Caffe2", extra["__author__"]);
        var info = string.Join("\n", logger.At(LogLevel.Information));
        Assert.Contains("Following weights matched with model:", info, StringComparison.Ordinal);
        Assert.Contains("| backbone.stem.conv1.* | conv1_{b,w}", info, StringComparison.Ordinal);
        Assert.Contains("Move classification weights for background class in cls_score.weight from index 0 to index 2.", info, StringComparison.Ordinal);
        // conv1_w_momentum is dropped, pixel_mean is not reported missing: no warning at all.
        Assert.Empty(logger.At(LogLevel.Warning));
    }

    [Fact]
    public void Matching_heuristics_apply_only_when_the_query_asks_for_them()
    {
        var file = _temp.Sub("checkpoint_file.pth");
        var ones3x2 = ones(3, 2);
        WritePth(file, new Dictionary<string, object?>
        {
            ["model"] = new Dictionary<string, object?>
            {
                ["layer1.weight"] = ones3x2,
                ["layer1.bias"] = ones(3),
                ["block2.layer2.weight"] = ones(1, 3),
                ["block2.layer2.bias"] = ones(1),
                ["proposal_generator.anchor_generator.cell_anchors.0"] = zeros(3, 4),
            },
        });
        var model = Blocks();
        var before = Param(model, "block1.layer1.weight").clone();
        var logger = new ListLogger();
        var checkpointer = new DetectionCheckpointer(model, logger: logger);

        checkpointer.Load(file);
        Assert.True(Models.BitEqual(before, Param(model, "block1.layer1.weight")), "a plain load leaves the mismatched name alone");
        Assert.True(Models.BitEqual(ones(1, 3), Param(model, "block2.layer2.weight")));
        var unexpected = logger.At(LogLevel.Warning).Single(m => m.StartsWith("The checkpoint state_dict contains keys", StringComparison.Ordinal));
        Assert.Contains("layer1.{bias, weight}", unexpected, StringComparison.Ordinal);
        Assert.DoesNotContain("cell_anchors", unexpected, StringComparison.Ordinal);

        checkpointer.Load(file + "?matching_heuristics=True");
        Assert.True(Models.BitEqual(ones3x2, Param(model, "block1.layer1.weight")), "heuristics match layer1.weight to block1.layer1.weight");

        var other = Blocks();
        var otherBefore = Param(other, "block1.layer1.weight").clone();
        new DetectionCheckpointer(other).Load(file + "?matching_heuristics=False");
        Assert.True(Models.BitEqual(otherBefore, Param(other, "block1.layer1.weight")), "only the exact value True turns them on");
    }

    [Fact]
    public void Any_other_query_is_refused_with_detectron2s_message_before_anything_loads()
    {
        var file = _temp.Sub("model.pth");
        WritePth(file, new Dictionary<string, object?> { ["model"] = ModuleCheckpointable.StateOf(Blocks()) });
        var model = Blocks();
        var before = Param(model, "block1.layer1.weight").clone();

        var error = Assert.Throws<ArgumentException>(() => new DetectionCheckpointer(model).Load(file + "?matching_heuristics=True&foo=bar&x=1&x=2"));

        Assert.Equal($"Unsupported query remaining: f{{'foo': ['bar'], 'x': ['1', '2']}}, orginal filename: {file}?matching_heuristics=True&foo=bar&x=1&x=2", error.Message);
        Assert.True(Models.BitEqual(before, Param(model, "block1.layer1.weight")));
    }

    /// <summary>Port of detectron2's test_custom_path_manager_handler.</summary>
    [Fact]
    public void A_custom_path_handler_resolves_its_scheme_to_the_save_folder()
    {
        var dir = _temp.Sub("out");
        var model = Blocks();
        new DetectionCheckpointer(model, dir, options: new() { Format = CheckpointFormat.Pth }).Save("checkpoint_file");

        var loaded = Blocks();
        var checkpointer = new DetectionCheckpointer(loaded);
        checkpointer.PathManager.Register("detectron2_test://", new PrefixHandler("detectron2_test://", dir));
        checkpointer.Load("detectron2_test://checkpoint_file.pth");

        Models.AssertSameParameters(model, loaded);
    }

    private sealed class PrefixHandler(string prefix, string folder) : IPathHandler
    {
        public Task<string> GetLocalPathAsync(string path, CancellationToken cancellationToken) =>
            Task.FromResult(Path.Combine(folder, path[prefix.Length..]));
    }

    [Fact]
    public void An_http_url_is_downloaded_once_into_the_cache_and_loaded()
    {
        var served = Directory.CreateDirectory(_temp.Sub("served")).FullName;
        var model = Blocks();
        WritePth(Path.Combine(served, "model_final.pth"), new Dictionary<string, object?> { ["model"] = ModuleCheckpointable.StateOf(model), ["iteration"] = 5L });
        using var server = new LoopbackFileServer(served);
        var cache = _temp.Sub("cache");
        var url = server.BaseUrl + "model_final.pth";

        var first = Blocks();
        var extra = new DetectionCheckpointer(first) { PathManager = PathManager.CreateDefault(cache) }.Load(url);
        var second = Blocks();
        new DetectionCheckpointer(second) { PathManager = PathManager.CreateDefault(cache) }.Load(url + "?matching_heuristics=True");

        Models.AssertSameParameters(model, first);
        Models.AssertSameParameters(model, second);
        Assert.Equal(5L, extra["iteration"]);
        Assert.Equal(1, server.Requests);
        Assert.Single(Directory.GetFiles(cache, "model_final.pth", SearchOption.AllDirectories));
        var missing = Assert.Throws<FileNotFoundException>(() => new Checkpointer(Blocks()) { PathManager = PathManager.CreateDefault(cache) }.Load(server.BaseUrl + "nope.pth"));
        Assert.Contains("HTTP 404", missing.Message, StringComparison.Ordinal);
    }
}
