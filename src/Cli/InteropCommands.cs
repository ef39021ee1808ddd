using Checkpointing.Abstractions;
using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Checkpointing.Formats;
using Checkpointing.Formats.Interop.Detectron;
using Checkpointing.Storage;
using Checkpointing.Core;

namespace Checkpointing.Cli;

/// <summary><c>ckpt convert</c> between formats, and <c>ckpt inspect</c> of PyTorch / detectron2 files.</summary>
public static class InteropCommands
{
    /// <summary>
    /// <c>ckpt convert SRC DST</c>: a <c>.pth</c>/<c>.pt</c>, <c>.pkl</c>, <c>.pyth</c>, <c>.safetensors</c> file or native checkpoint
    /// into a <c>.pth</c>, <c>.safetensors</c> or native checkpoint (chosen by DST's extension); optionally with detectron2's Caffe2
    /// renames (--rename c2), its model keys aligned to another checkpoint's (--match-to), or split into a sharded layout (--layout).
    /// </summary>
    public static Command Convert(CliContext context)
    {
        var source = CliOptions.Positional("SRC", ".pth/.pt, .pkl, .pyth, .safetensors or a native checkpoint folder");
        var destination = CliOptions.Positional("DST", ".pth or .safetensors (model tensors and __metadata__ only) by extension, else a native folder");
        var rename = CliOptions.Choice("--rename", "apply detectron2's Caffe2 renames", fallback: null, "c2");
        var matchTo = CliOptions.Text("--match-to", "align SRC's model keys to TARGET's keys and shapes and print the matches", "TARGET");
        var layout = CliOptions.Text("--layout", "split tensors into a sharded native checkpoint as FILE.json says (parts, and per state path a dim, flat or boxes)", "FILE");
        var compress = new Option<bool>("--compress") { Description = "store the native checkpoint's tensors compressed where that makes them smaller (bytegroup; not plain safetensors)" };
        var json = CliOptions.Json();
        var command = new Command("convert", "convert SRC to DST; a sharded SRC is consolidated unless --layout splits it").With(source, destination, rename, matchTo, layout, compress, json);
        command.SetAction(parse => ConvertAsync(new ConvertRequest(parse.GetValue(source)!, parse.GetValue(destination)!, parse.GetValue(rename), parse.GetValue(matchTo),
            parse.GetValue(layout), parse.GetValue(compress)), parse.GetValue(json), context));
        return command;
    }

    private sealed record ConvertRequest(string Source, string Destination, string? Rename, string? MatchTo, string? LayoutPath, bool Compress);

    private static async Task<int> ConvertAsync(ConvertRequest request, bool json, CliContext context)
    {
        var (source, destination, rename, matchTo, layoutPath, compress) = request;
        var format = TorchFiles.IsTorchFile(destination) ? "pth" : SafetensorsFile.HasExtension(destination) ? "safetensors" : "native";
        var layout = layoutPath is null ? null : LayoutFile.Read(layoutPath);
        if (layout is not null && format != "native") throw new InvalidDataException($"--layout writes a sharded native checkpoint; {destination} is a .{format} file, which holds whole tensors.");
        if (compress && format != "native") throw new UsageException($"--compress writes a native checkpoint; {destination} is a .{format} file, which holds plain tensors.", "ckpt convert");

        var data = await CheckpointTrees.LoadAsync(source);
        var model = CheckpointTrees.Model(data, source);
        IReadOnlyDictionary<string, string>? originalNames = null;
        // detectron2 renames Caffe2 weights before matching them (c2_conversion when __author__ is "Caffe2").
        var c2 = rename == "c2" || (matchTo is not null && data.GetValueOrDefault(DetectronCheckpointFile.AuthorKey) as string == "Caffe2");
        if (c2)
        {
            var host = model.ToDictionary(p => p.Key, p => p.Value as HostTensor ?? throw new InvalidDataException($"{source}: model entry '{p.Key}' is not a tensor."), StringComparer.Ordinal);
            var (renamed, newToOriginal, _) = C2NameConversion.ConvertC2DetectronWeights(host);
            model = new OrderedDictionary<string, object?>(renamed.Select(p => new KeyValuePair<string, object?>(p.Key, p.Value)), StringComparer.Ordinal);
            originalNames = newToOriginal;
            // The names are detectron2's now: loading must not convert them a second time.
            data.Remove(DetectronCheckpointFile.AuthorKey);
        }
        JsonObject? match = null;
        if (matchTo is not null)
        {
            var target = CheckpointTrees.Model(await CheckpointTrees.LoadAsync(matchTo), matchTo);
            var alignment = StateDictAlignment.Align(CheckpointTrees.Shapes(target, matchTo), CheckpointTrees.Shapes(model, source), originalNames);
            model = alignment.Apply<object?>(model);
            data.Remove(DetectronCheckpointFile.MatchingHeuristicsKey);
            match = MatchJson(alignment, originalNames);
            if (!json)
            {
                context.Out.WriteLine(alignment.Report);
                foreach (var warning in alignment.Warnings) context.Out.WriteLine("warning: " + warning);
            }
        }
        data[Checkpointer.ModelKey] = model;

        var tensors = CheckpointTrees.Leaves(data).Select(l => l.Value).OfType<HostTensor>().ToList();
        var bytes = tensors.Sum(t => t.Data.LongLength);
        var sharded = layout?.Apply(data, source) ?? 0;
        await WriteAsync(destination, data, format, layout?.Parts ?? 1, compress ? new TensorCompression() : null);
        if (json)
        {
            context.Out.WriteLine(new JsonObject
            {
                ["source"] = Path.GetFullPath(source),
                ["destination"] = Path.GetFullPath(destination),
                ["format"] = format,
                ["tensors"] = tensors.Count,
                ["bytes"] = bytes,
                ["renamed"] = c2 ? "c2" : null,
                ["sharded_tensors"] = sharded,
                ["parts"] = layout?.Parts,
                ["compressed"] = compress,
                ["match"] = match,
            }.ToJsonString());
        }
        else
        {
            var cut = layout is null ? "" : $", {sharded} of them sharded in {layout.Parts} parts";
            context.Out.WriteLine($"wrote {destination} ({(format == "native" ? "native checkpoint" : "." + format)}, {tensors.Count} tensors{cut}, {bytes:N0} bytes)");
        }
        return 0;
    }

    /// <summary>
    /// A <c>.pth</c> file, a <c>.safetensors</c> file or a native checkpoint folder, each committed atomically
    /// (temporary name, fsync, rename). A native destination must be new, empty, or a native checkpoint: a folder
    /// holding anything else (hidden files and sub-folders included) is refused, so nothing of the user's is
    /// replaced or deleted.
    /// </summary>
    /// <param name="destination">The file or folder to write.</param>
    /// <param name="data">The checkpoint's state tree; a <c>.safetensors</c> file takes only its "model" tensors and string metadata.</param>
    /// <param name="format">"pth", "safetensors" or "native".</param>
    /// <param name="parts">Shards of a native checkpoint (the parts of a sharded layout).</param>
    /// <param name="compression">How a native checkpoint's tensors are compressed; null: stored as they are.</param>
    private static async Task WriteAsync(string destination, OrderedDictionary<string, object?> data, string format, int parts, TensorCompression? compression)
    {
        var full = Path.GetFullPath(destination).TrimEnd(Path.DirectorySeparatorChar);
        if (format == "native") EnsureCheckpointFolderOrAbsent(full);
        var store = new FileSystemStore(Path.GetDirectoryName(full)!);
        var name = Path.GetFileName(full);
        if (format == "pth")
        {
            await store.WriteAsync(name, (stream, _) =>
            {
                TorchFiles.Write(stream, data, Path.GetFileNameWithoutExtension(name));
                return Task.CompletedTask;
            });
            return;
        }
        if (format == "safetensors")
        {
            // A bare safetensors file holds flat named tensors: the model's, plus the string metadata.
            var tensors = CheckpointTrees.Model(data, destination)
                .Select(p => new NamedTensor(p.Key, p.Value as HostTensor ?? throw new InvalidDataException($"model entry '{p.Key}' is not a tensor; a .safetensors file holds tensors only.")))
                .ToList();
            // Hugging Face loaders expect format=pt when a file carries no metadata of its own.
            var metadata = SafetensorsFile.MetadataOf(data) ?? new Dictionary<string, string> { ["format"] = "pt" };
            await store.WriteAsync(name, (stream, _) =>
            {
                SafetensorsShardWriter.Write(stream, tensors, metadata);
                return Task.CompletedTask;
            });
            return;
        }
        var iteration = data.GetValueOrDefault("iteration") as long?;
        await NativeCheckpointWriter.WriteAsync(store, name, new CheckpointIdentity("local", name, iteration, parts), data, TorchTensors.AsSource,
            new NativeWriteOptions { ShardCount = parts, Compression = compression });
    }

    private static void EnsureCheckpointFolderOrAbsent(string folder)
    {
        if (File.Exists(folder)) throw new ForeignContentException(folder, [Path.GetFileName(folder) + " (a file, not a folder)"]);
        if (!Directory.Exists(folder)) return;
        if (new DirectoryInfo(folder).LinkTarget is not null) throw new SymbolicLinkRefusedException(folder);
        var foreign = new DirectoryInfo(folder).EnumerateFileSystemInfos()
            .Where(e => e is DirectoryInfo || e.LinkTarget is not null
                || !(StoreLayout.IsOurs(e.Name) || FileSystemStore.TargetOfTemporary(e.Name) is { } target && StoreLayout.IsOurs(target)))
            .Select(e => e.Name)
            .Order(StringComparer.Ordinal)
            .ToList();
        if (foreign.Count > 0) throw new ForeignContentException(folder, foreign);
    }

    private static JsonObject MatchJson(StateDictAlignmentResult alignment, IReadOnlyDictionary<string, string>? originalNames) => new()
    {
        ["matched"] = new JsonArray(alignment.Matches.Select(m => (JsonNode?)new JsonObject
        {
            ["model"] = m.Key,
            ["checkpoint"] = originalNames?.GetValueOrDefault(m.Value) ?? m.Value,
        }).ToArray()),
        ["unmatched"] = new JsonArray(alignment.UnmatchedCheckpointKeys.Select(k => (JsonNode?)k).ToArray()),
        ["warnings"] = new JsonArray(alignment.Warnings.Select(w => (JsonNode?)w).ToArray()),
        ["report"] = alignment.Report,
    };

    /// <summary><c>ckpt inspect</c> of a <c>.pth</c>/<c>.pt</c>/<c>.pkl</c>/<c>.pyth</c>/<c>.safetensors</c> file: every tensor and every other value, as stored.</summary>
    public static int InspectFile(string path, bool json, CliContext context)
    {
        var leaves = CheckpointTrees.Leaves(CheckpointTrees.ReadRaw(path)).ToList();
        var tensors = leaves.Where(l => l.Value is HostTensor).Select(l => (l.Path, Tensor: (HostTensor)l.Value!)).ToList();
        var values = new JsonObject();
        foreach (var (key, value) in leaves.Where(l => l.Value is not HostTensor)) values[key] = CheckpointTrees.ToJson(value);
        var total = tensors.Sum(t => t.Tensor.Data.LongLength);
        var format = Path.GetExtension(path).TrimStart('.').ToLowerInvariant();
        if (json)
        {
            context.Out.WriteLine(new JsonObject
            {
                ["path"] = Path.GetFullPath(path),
                ["format"] = format,
                ["total_bytes"] = total,
                ["tensors"] = new JsonArray(tensors.Select(t => (JsonNode?)new JsonObject
                {
                    ["key"] = t.Path,
                    ["dtype"] = t.Tensor.DType.Name(),
                    ["shape"] = new JsonArray(t.Tensor.Shape.Select(d => (JsonNode?)d).ToArray()),
                    ["bytes"] = t.Tensor.Data.LongLength,
                }).ToArray()),
                ["values"] = values,
            }.ToJsonString());
            return 0;
        }
        context.Out.WriteLine($"{format} file {path}  {tensors.Count} tensors, {total.ToString("N0", CultureInfo.InvariantCulture)} bytes");
        var table = CatalogCommands.TensorTable();
        foreach (var (key, t) in tensors) table.Add(key, t.DType.Name(), CatalogCommands.Shape(t.Shape), CatalogCommands.Bytes(t.Data.LongLength));
        table.Write(context);
        context.Out.WriteLine("non-tensor values:");
        foreach (var (key, value) in values) context.Out.WriteLine($"  {key} = {value?.ToJsonString() ?? "null"}");
        return 0;
    }
}
