using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Checkpointing.Tests.Shared;
using static TorchSharp.torch;

namespace Checkpointing.Core.Tests;

/// <summary>
/// Issue 8: pretrained weights published as a bare .safetensors file (written here by hand in Python with the
/// official layout) load through <c>Load</c> and <c>ResumeOrLoad</c>'s path.
/// </summary>
public sealed class SafetensorsCheckpointerTests : IDisposable
{
    private readonly TempDir _temp = new();

    public void Dispose() => _temp.Dispose();

    private static Dictionary<string, string> Hashes(nn.Module model) =>
        model.state_dict().ToDictionary(p => p.Key, p =>
        {
            using var c = p.Value.detach().cpu().contiguous();
            return Convert.ToHexStringLower(SHA256.HashData(c.bytes));
        });

    private Dictionary<string, string> WritePretrained(string path) =>
        JsonNode.Parse(PythonScripts.Run("write_safetensors_model", path))!.AsObject().ToDictionary(p => p.Key, p => (string)p.Value!["sha256"]!);

    [Fact]
    public void ResumeOrLoad_without_a_checkpoint_loads_the_model_from_a_safetensors_path()
    {
        var path = _temp.Sub("pretrained.safetensors");
        var expected = WritePretrained(path);
        var model = Models.Small();
        var checkpointer = new Checkpointer(model, _temp.Sub("run"));

        var extra = checkpointer.ResumeOrLoad(path, resume: true);

        Assert.Equal(expected, Hashes(model));
        var metadata = Assert.IsAssignableFrom<IReadOnlyDictionary<string, object?>>(extra["__metadata__"]);
        Assert.Equal("pt", metadata["format"]);
    }

    [Fact]
    public void DetectionCheckpointer_loads_safetensors_weights_too()
    {
        var path = _temp.Sub("pretrained.safetensors");
        var expected = WritePretrained(path);
        var model = Models.Small();

        new DetectionCheckpointer(model).Load(path);

        Assert.Equal(expected, Hashes(model));
    }

    [Fact]
    public void A_dtype_TorchSharp_lacks_fails_naming_the_tensor_and_leaves_the_model_untouched()
    {
        var path = _temp.Sub("weights.safetensors");
        PythonScripts.Run("write_safetensors_dtypes", path);
        var model = Models.Small();
        var before = Hashes(model);

        var e = Assert.Throws<NotSupportedException>(() => new Checkpointer(model).Load(path));

        Assert.Contains("tensor 'u64': U64 tensors have no TorchSharp type", e.Message);
        Assert.Equal(before, Hashes(model));
    }
}
