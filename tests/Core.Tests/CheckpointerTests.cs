using Microsoft.Extensions.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.Core.Tests;

/// <summary>
/// Ports of fvcore's tests/test_checkpoint.py TestCheckpointer. Not portable to TorchSharp:
/// test_loading_objects_with_expected_shape_mismatches (TorchSharp has no quantization-aware
/// training: no observers or fake-quant modules whose buffers resize on load) and
/// test_load_lazy_module (TorchSharp has no lazy modules or uninitialized parameters).
/// DataParallel itself does not exist in TorchSharp; its effect on checkpoints — every key under
/// "module." — is reproduced with a wrapper module whose child is named "module".
/// </summary>
public sealed class CheckpointerTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<bool> Wrapped => new() { false, true };

    [Theory]
    [MemberData(nameof(Wrapped))]
    public void From_last_checkpoint_model(bool trainedWrapped)
    {
        var trained = Models.Small();
        nn.Module saved = trainedWrapped ? new Models.DataParallelLike(trained) : trained;
        new Checkpointer(saved, _dir.Path).Save("checkpoint_file");

        var fresh = Models.Small();
        var checkpointer = new Checkpointer(fresh, _dir.Path);
        Assert.True(checkpointer.HasCheckpoint());
        Assert.Equal(Path.Combine(_dir.Path, "checkpoint_file"), checkpointer.GetCheckpointFile());
        checkpointer.Load(checkpointer.GetCheckpointFile());
        Models.AssertSameParameters(trained, fresh);
    }

    [Theory]
    [MemberData(nameof(Wrapped))]
    public void From_name_file_model(bool trainedWrapped)
    {
        var trained = Models.Small();
        nn.Module saved = trainedWrapped ? new Models.DataParallelLike(trained) : trained;
        new Checkpointer(saved, _dir.Sub("f"), saveToDisk: true).Save("checkpoint_file");

        var fresh = Models.Small();
        var checkpointer = new Checkpointer(fresh, _dir.Sub("g"));
        Assert.False(checkpointer.HasCheckpoint());
        Assert.Equal("", checkpointer.GetCheckpointFile());
        checkpointer.Load(Path.Combine(_dir.Sub("f"), "checkpoint_file"));
        Models.AssertSameParameters(trained, fresh);
    }

    private sealed class CheckpointableObj : ICheckpointable
    {
        public OrderedDictionary<string, object?> State { get; private set; } = new();

        public CheckpointableObj()
        {
            for (var i = 0; i < 10; i++) State[RandomString(100)] = RandomString(100);
        }

        private static string RandomString(int n) => new(Enumerable.Range(0, n).Select(_ => (char)('A' + Random.Shared.Next(26))).ToArray());

        public OrderedDictionary<string, object?> StateDict() => State;

        public void LoadStateDict(IReadOnlyDictionary<string, object?> state) => State = new OrderedDictionary<string, object?>(state);
    }

    [Fact]
    public void Checkpointables_not_tracked_by_the_loader_are_returned()
    {
        var obj = new CheckpointableObj();
        new Checkpointer(Models.Small(), _dir.Path, saveToDisk: true, [new("checkpointables", obj)]).Save("checkpoint_file");

        var fresh = new Checkpointer(Models.Small(), _dir.Path);
        Assert.True(fresh.HasCheckpoint());
        var checkpoint = fresh.Load(fresh.GetCheckpointFile());
        var returned = Assert.IsType<OrderedDictionary<string, object?>>(checkpoint["checkpointables"]);
        foreach (var (key, value) in obj.StateDict()) Assert.Equal(value, returned[key]);
        Assert.DoesNotContain("model", checkpoint.Keys);
    }

    [Fact]
    public void Tracked_checkpointables_are_loaded_and_consumed()
    {
        var obj = new CheckpointableObj();
        new Checkpointer(Models.Small(), _dir.Path, true, [new("obj", obj)]).Save("c", new Dictionary<string, object?> { ["iteration"] = 5L, ["note"] = "hi" });
        var target = new CheckpointableObj();
        var checkpoint = new Checkpointer(Models.Small(), _dir.Path, true, [new("obj", target)]).Load(Path.Combine(_dir.Path, "c"));
        Assert.Equal(obj.State.ToList(), target.State.ToList());
        Assert.Equal(["iteration", "note"], checkpoint.Keys);
        Assert.Equal(5L, checkpoint["iteration"]);
    }

    private sealed class ReusedModel : nn.Module<Tensor, Tensor>
    {
        public readonly TorchSharp.Modules.Linear X;

        public ReusedModel(bool hasY) : base(nameof(ReusedModel))
        {
            X = nn.Linear(10, 10);
            register_module("x", X);
            if (hasY) register_module("y", X);
        }

        public override Tensor forward(Tensor input) => X.call(input);
    }

    [Fact]
    public void Reused_params_loaded_under_another_name_are_not_reported_missing()
    {
        var model = new ReusedModel(false);
        using (no_grad()) model.X.bias!.fill_(5.0);
        var data = new OrderedDictionary<string, object?> { ["model"] = ModuleCheckpointable.StateOf(model) };

        var newModel = new ReusedModel(true);
        Assert.Contains("y.bias", newModel.state_dict().Keys);
        var logger = new ListLogger();
        var keys = ModelStateLoader.Load(newModel, (IDictionary<string, object?>)data["model"]!);
        ModelStateLoader.Log(logger, newModel, keys);

        Assert.Equal(["y.weight", "y.bias"], keys.MissingKeys);
        Assert.True(newModel.state_dict()["y.bias"].sub(5.0).abs().max().item<float>() == 0f);
        Assert.Empty(logger.Entries);
    }

    [Fact]
    public void Shape_mismatch_is_skipped_with_fvcore_warning_and_other_keys_load()
    {
        var saved = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1));
        new Checkpointer(saved, _dir.Path).Save("c");
        var target = nn.Sequential(nn.Linear(2, 4), nn.Linear(3, 1));
        var before = target.state_dict()["0.weight"].clone();
        var logger = new ListLogger();
        new Checkpointer(target, _dir.Path, logger: logger).Load(Path.Combine(_dir.Path, "c"));

        Assert.True(Models.BitEqual(target.state_dict()["0.weight"], before));
        Assert.True(Models.BitEqual(target.state_dict()["1.weight"], saved.state_dict()["1.weight"]));
        var warnings = logger.At(LogLevel.Warning).ToList();
        Assert.Contains("Skip loading parameter '0.weight' to the model due to incompatible shapes: (3, 2) in the checkpoint but (4, 2) in the model! You might want to double check if this is expected.", warnings);
        Assert.Contains("Skip loading parameter '0.bias' to the model due to incompatible shapes: (3,) in the checkpoint but (4,) in the model! You might want to double check if this is expected.", warnings);
        Assert.Contains("Some model parameters or buffers are not found in the checkpoint:\n0.{bias, weight}", warnings);
    }

    [Fact]
    public void Missing_and_unexpected_keys_are_grouped_like_fvcore()
    {
        new Checkpointer(nn.Sequential(("a", nn.Linear(2, 3)), ("b", nn.Linear(3, 1))), _dir.Path).Save("c");
        var logger = new ListLogger();
        new Checkpointer(nn.Sequential(("a", nn.Linear(2, 3)), ("c", nn.Linear(3, 1))), _dir.Path, logger: logger).Load(Path.Combine(_dir.Path, "c"));
        var warnings = logger.At(LogLevel.Warning).ToList();
        Assert.Contains("Some model parameters or buffers are not found in the checkpoint:\nc.{bias, weight}", warnings);
        Assert.Contains("The checkpoint state_dict contains keys that are not used by the model:\n  b.{bias, weight}", warnings);
    }

    [Fact]
    public void Group_messages_match_fvcore_format()
    {
        Assert.Equal("Some model parameters or buffers are not found in the checkpoint:\na.{b, w}\nc", IncompatibleKeyMessages.Missing(["a.w", "a.b", "c"]));
        Assert.Equal("The checkpoint state_dict contains keys that are not used by the model:\n  x.y\n  z", IncompatibleKeyMessages.Unexpected(["x.y", "z"]));
    }

    [Fact]
    public void Module_prefix_is_stripped_only_when_every_key_has_it()
    {
        var all = new OrderedDictionary<string, int> { ["module.a"] = 1, ["module.b"] = 2 };
        ModelStateLoader.StripPrefixIfPresent(all, "module.");
        Assert.Equal(["a", "b"], all.Keys);
        var some = new OrderedDictionary<string, int> { ["module.a"] = 1, ["b"] = 2 };
        ModelStateLoader.StripPrefixIfPresent(some, "module.");
        Assert.Equal(["module.a", "b"], some.Keys);
    }

    [Fact]
    public void Add_checkpointable_refuses_duplicates_and_objects_without_state()
    {
        var checkpointer = new Checkpointer(Models.Small(), _dir.Path);
        checkpointer.AddCheckpointable("opt", torch.optim.SGD(Models.Small().parameters(), 0.1));
        var dup = Assert.Throws<ArgumentException>(() => checkpointer.AddCheckpointable("opt", new RngStateCheckpointable()));
        Assert.Contains("Key opt already used in the Checkpointer", dup.Message);
        Assert.Throws<ArgumentException>(() => checkpointer.AddCheckpointable("model", new RngStateCheckpointable()));
        var stateless = Assert.Throws<ArgumentException>(() => checkpointer.AddCheckpointable("x", new object()));
        Assert.Contains("needs an object with state", stateless.Message);
    }

    [Fact]
    public void Save_does_nothing_without_a_save_dir_or_when_not_saving_to_disk()
    {
        new Checkpointer(Models.Small(), _dir.Sub("off"), saveToDisk: false).Save("c");
        Assert.False(Directory.Exists(_dir.Sub("off")));
        var loadOnly = new Checkpointer(Models.Small());
        loadOnly.Save("c");
        Assert.False(loadOnly.HasCheckpoint());
    }

    [Fact]
    public void Load_of_empty_path_starts_from_scratch()
    {
        var logger = new ListLogger();
        Assert.Empty(new Checkpointer(Models.Small(), logger: logger).Load(""));
        Assert.Contains("No checkpoint found. Initializing model from scratch", logger.At(LogLevel.Information));
    }

    [Fact]
    public void Bad_names_are_refused_before_anything_is_written()
    {
        var checkpointer = new Checkpointer(Models.Small(), _dir.Path);
        foreach (var bad in new[] { "../x", "a/b", "", ".hidden", "x\\y" })
        {
            Assert.Throws<ArgumentException>(() => checkpointer.Save(bad));
        }
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path));
    }

    [Fact]
    public void Get_all_checkpoint_files_lists_committed_checkpoints_only()
    {
        var checkpointer = new Checkpointer(Models.Small(), _dir.Path);
        checkpointer.Save("b");
        checkpointer.Save("a");
        Directory.CreateDirectory(_dir.Sub("half_written"));
        File.WriteAllText(Path.Combine(_dir.Sub("half_written"), "shard-00000-of-00001-x.safetensors"), "partial");
        Assert.Equal([_dir.Sub("a"), _dir.Sub("b")], checkpointer.GetAllCheckpointFiles());
        Assert.Equal(_dir.Sub("a"), checkpointer.GetCheckpointFile());
    }

    [Fact]
    public void Tag_last_checkpoint_writes_fvcore_compatible_file()
    {
        var checkpointer = new Checkpointer(Models.Small(), _dir.Path);
        checkpointer.Save("one");
        checkpointer.Save("two");
        Assert.Equal("two", File.ReadAllText(_dir.Sub("last_checkpoint")));
        checkpointer.TagLastCheckpoint("one");
        Assert.Equal(_dir.Sub("one"), checkpointer.GetCheckpointFile());
    }

    [Fact]
    public void Resume_or_load_without_resume_loads_only_the_model_from_path()
    {
        var source = Models.Small();
        var sourceOpt = torch.optim.SGD(source.parameters(), 0.5, momentum: 0.9);
        new Checkpointer(source, _dir.Sub("pretrained"), true, [new("optimizer", sourceOpt)]).Save("weights");

        var model = Models.Small();
        var optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum: 0.9);
        var checkpointer = new Checkpointer(model, _dir.Sub("run"), true, [new("optimizer", optimizer)]);
        checkpointer.Save("model_0000004", new Dictionary<string, object?> { ["iteration"] = 4L });

        var fromPath = checkpointer.ResumeOrLoad(Path.Combine(_dir.Sub("pretrained"), "weights"), resume: false);
        Models.AssertSameParameters(source, model);
        Assert.Equal(0.01, optimizer.ParamGroups.First().LearningRate);
        Assert.Contains("optimizer", fromPath.Keys);

        var resumed = checkpointer.ResumeOrLoad(Path.Combine(_dir.Sub("pretrained"), "weights"), resume: true);
        Assert.Equal(4L, resumed["iteration"]);
        Assert.DoesNotContain("optimizer", resumed.Keys);
    }
}
