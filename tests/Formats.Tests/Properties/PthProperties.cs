using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Checkpointing.Formats.Interop.Torch;
using Checkpointing.TestSupport;
using CsCheck;

namespace Checkpointing.Formats.Tests.Properties;

/// <summary>
/// Issue 8, data loss 4: random state dicts written as <c>.pth</c> by our <see cref="PthWriter"/> load in PyTorch
/// (/usr/bin/python3) bit for bit. A batch of cases goes to one Python process, so the property costs seconds.
/// </summary>
public sealed class PthProperties : IDisposable
{
    private const int CasesPerBatch = 25;
    private readonly string _dir = Directory.CreateTempSubdirectory("pth-props-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Any_state_dict_written_as_pth_loads_in_torch_bit_for_bit()
    {
        StateDictGen.StateDicts(StateDictGen.TorchDTypes).Array[CasesPerBatch].Sample(batch =>
        {
            var batchDir = Directory.CreateDirectory(Path.Combine(_dir, Guid.NewGuid().ToString("N"))).FullName;
            var expected = new Dictionary<string, OrderedDictionary<string, object?>>(StringComparer.Ordinal);
            for (var i = 0; i < batch.Length; i++)
            {
                var path = Path.Combine(batchDir, $"case{i}.pth");
                var model = batch[i].CreateModel();
                PthWriter.Write(path, new OrderedDictionary<string, object?> { ["model"] = model }, v => v as ITensorSource);
                expected.Add(path, model);
            }
            var list = Path.Combine(batchDir, "paths.json");
            File.WriteAllText(list, JsonSerializer.Serialize(expected.Keys));

            var loaded = JsonNode.Parse(PythonTorch.Run(Path.Combine(AppContext.BaseDirectory, "Interop", "Scripts", "load_batch.py"), list))!.AsObject();
            foreach (var (path, model) in expected)
            {
                var seen = loaded[path]!.AsArray();
                Assert.Equal(model.Keys, seen.Select(e => e![0]!.GetValue<string>()));
                for (var k = 0; k < model.Count; k++)
                {
                    var (key, value) = model.GetAt(k);
                    var tensor = (HostTensor)value!;
                    var summary = seen[k]![1]!;
                    Assert.Equal(tensor.DType.Name(), summary["tensor"]!.GetValue<string>());
                    Assert.Equal(tensor.Shape, summary["shape"]!.AsArray().Select(d => d!.GetValue<long>()));
                    Assert.True(Convert.ToHexStringLower(SHA256.HashData(tensor.Data)) == summary["sha256"]!.GetValue<string>(),
                        $"{Path.GetFileName(path)}: tensor '{key}' ({tensor}) differs in torch.load");
                }
            }
            Directory.Delete(batchDir, recursive: true);
        }, iter: 1, threads: 1);
    }
}
