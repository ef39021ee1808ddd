using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Checkpointing.Tests.Shared;
using static TorchSharp.torch;

namespace Checkpointing.Core.Tests;

/// <summary>Checkpointer over fvcore's <c>NAME.pth</c> files, checked against PyTorch itself.</summary>
public sealed class PthCheckpointerTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    private static void TrainOneStep(nn.Module model, optim.Optimizer optimizer)
    {
        optimizer.zero_grad();
        ((nn.Module<Tensor, Tensor>)model).call(ones(4, 2)).sum().backward();
        optimizer.step();
    }

    private static string Sha256(Tensor t)
    {
        using var c = t.detach().cpu().contiguous();
        return Convert.ToHexStringLower(SHA256.HashData(c.bytes));
    }

    [Fact]
    public void Pth_save_writes_NAME_pth_tags_the_file_name_and_torch_load_reads_identical_tensors()
    {
        var model = Models.Small();
        var optimizer = optim.SGD(model.parameters(), 0.1, momentum: 0.9);
        TrainOneStep(model, optimizer);
        var dir = _temp.Sub("run");
        var checkpointer = new Checkpointer(model, dir, checkpointables: [new("optimizer", optimizer)], options: new() { Format = CheckpointFormat.Pth });

        checkpointer.Save("model_0000099", new Dictionary<string, object?> { ["iteration"] = 99L, ["note"] = "pth" });

        var file = Path.Combine(dir, "model_0000099.pth");
        Assert.Equal(["last_checkpoint", "model_0000099.pth"], Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("model_0000099.pth", File.ReadAllText(Path.Combine(dir, "last_checkpoint")));
        Assert.True(checkpointer.HasCheckpoint());
        Assert.Equal(file, checkpointer.GetCheckpointFile());
        Assert.Equal([file], checkpointer.GetAllCheckpointFiles());

        var seen = JsonNode.Parse(PythonScripts.Run("read_pth", file))!;
        Assert.Equal("OrderedDict", (string)seen["model_type"]!);
        Assert.Equal(model.state_dict().Keys, seen["model_keys"]!.AsArray().Select(k => (string)k!));
        var tensors = seen["tensors"]!.AsObject();
        foreach (var (key, tensor) in model.state_dict())
        {
            Assert.Equal(Sha256(tensor), (string)tensors[$"model/{key}"]!["sha256"]!);
            Assert.Equal("float32", (string)tensors[$"model/{key}"]!["dtype"]!);
        }
        var momentum = tensors.Where(t => t.Key.StartsWith("optimizer/state/", StringComparison.Ordinal) && t.Key.EndsWith("/momentum_buffer", StringComparison.Ordinal)).ToList();
        Assert.Equal(4, momentum.Count);
        Assert.Equal(99, (long)seen["values"]!["iteration"]!);
        Assert.Equal("pth", (string)seen["values"]!["note"]!);
        Assert.Equal("SGD", (string)seen["values"]!["optimizer/type"]!);
    }

    [Fact]
    public void A_pth_checkpoint_resumes_model_and_optimizer_through_our_own_loader()
    {
        var model = Models.Small();
        var optimizer = optim.SGD(model.parameters(), 0.1, momentum: 0.9);
        TrainOneStep(model, optimizer);
        var dir = _temp.Sub("run");
        new Checkpointer(model, dir, checkpointables: [new("optimizer", optimizer)], options: new() { Format = CheckpointFormat.Pth })
            .Save("model_0000004", new Dictionary<string, object?> { ["iteration"] = 4L });

        var resumedModel = Models.Small();
        var resumedOptimizer = optim.SGD(resumedModel.parameters(), 0.1, momentum: 0.9);
        var extra = new Checkpointer(resumedModel, dir, checkpointables: [new("optimizer", resumedOptimizer)]).ResumeOrLoad("", resume: true);

        Assert.Equal(4L, extra["iteration"]);
        Models.AssertSameParameters(model, resumedModel);
        // Same momentum buffers ⇒ the next step moves both models identically.
        TrainOneStep(model, optimizer);
        TrainOneStep(resumedModel, resumedOptimizer);
        Models.AssertSameParameters(model, resumedModel);
    }

    [Fact]
    public void Resumes_from_a_folder_written_by_PyTorch_the_way_detectron2_writes_it()
    {
        var dir = Directory.CreateDirectory(_temp.Sub("d2")).FullName;
        var written = JsonNode.Parse(PythonScripts.Run("write_d2_folder", dir))!.AsObject();

        var model = Models.Small();
        var checkpointer = new Checkpointer(model, dir);
        Assert.True(checkpointer.HasCheckpoint());
        Assert.Equal(Path.Combine(dir, "model_0000009.pth"), checkpointer.GetCheckpointFile());
        Assert.Equal([Path.Combine(dir, "model_0000009.pth")], checkpointer.GetAllCheckpointFiles());

        var extra = checkpointer.ResumeOrLoad("", resume: true);

        Assert.Equal(9L, extra["iteration"]);
        Assert.True(extra.ContainsKey("optimizer"), "PyTorch's optimizer state is returned unconsumed when no optimizer is registered");
        Assert.Equal(written.Select(p => p.Key), model.state_dict().Keys);
        foreach (var (key, tensor) in model.state_dict()) Assert.Equal((string)written[key]!["sha256"]!, Sha256(tensor));
    }

    [Fact]
    public void Periodic_retention_deletes_old_pth_files_and_keeps_the_final_one()
    {
        var dir = _temp.Sub("run");
        var checkpointer = new Checkpointer(Models.Small(), dir, options: new() { Format = CheckpointFormat.Pth });
        var periodic = new PeriodicCheckpointer(checkpointer, period: 2, maxIter: 8, maxToKeep: 2);
        for (long i = 0; i < 8; i++) periodic.Step(i);

        Assert.Equal(["last_checkpoint", "model_0000005.pth", "model_0000007.pth", "model_final.pth"],
            Directory.GetFileSystemEntries(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("model_final.pth", File.ReadAllText(Path.Combine(dir, "last_checkpoint")));
        Assert.Equal(7L, new Checkpointer(Models.Small(), dir).ResumeOrLoad("")["iteration"]);
    }

    [Fact]
    public void A_pth_file_loads_by_extension_and_a_bare_state_dict_is_the_model()
    {
        var model = Models.Small();
        var file = _temp.Sub("weights.pt");
        using (var stream = File.Create(file)) TorchFiles.Write(stream, ModuleCheckpointable.StateOf(model));

        var loaded = Models.Small();
        var logger = new ListLogger();
        new Checkpointer(loaded, logger: logger).Load(file);

        Models.AssertSameParameters(model, loaded);
        Assert.Empty(logger.At(Microsoft.Extensions.Logging.LogLevel.Warning));
    }
}
