using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Checkpointing.Formats;
using Checkpointing.Core;

namespace Checkpointing.Cli;

/// <summary><c>ckpt ls</c>, <c>ckpt inspect</c>, <c>ckpt verify</c> and <c>ckpt compact</c> over native checkpoints in local folders.</summary>
public static class CatalogCommands
{
    /// <summary>
    /// <c>ckpt ls DIR</c>: the checkpoints in a local folder (logical and written bytes, the last tag), damaged ones marked;
    /// <c>ckpt ls --run TENANT/RUN</c>: a run's catalog from its grain, as <c>ckpt run show</c> prints it.
    /// </summary>
    public static Command Ls(CliContext context)
    {
        var dir = new Argument<string?>("DIR") { Description = "a folder of checkpoints", Arity = ArgumentArity.ZeroOrOne };
        var run = CliOptions.RunOption("--run", "list a run's catalog from its run grain instead (cluster mode)");
        var json = CliOptions.Json();
        var command = new Command("ls", "list the checkpoints in DIR (LOGICAL tensor bytes, bytes WRITTEN by each save); * marks last_checkpoint").With(dir, run, json);
        var cluster = ClusterOptions.AddTo(command);
        command.SetAction(async parse =>
        {
            if (parse.GetValue(run) is { } id)
            {
                // `ckpt ls --run tenant/run`: the run grain's catalog, as `ckpt run show` prints it.
                await using var connection = await cluster.ConnectAsync(parse);
                RunCommands.Print(context, parse.GetValue(json), await connection.RetryWhileFailingOverAsync(() => connection.Run(id).Get()));
                return 0;
            }
            return await LsAsync(parse.GetValue(dir) ?? throw new UsageException("ls needs DIR (or --run TENANT/RUN)", "ckpt ls"), parse.GetValue(json), context);
        });
        return command;
    }

    private static async Task<int> LsAsync(string dir, bool jsonOut, CliContext context)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"no such folder: {dir}");
        var survey = await CheckpointSurvey.OfFolderAsync(dir);
        if (jsonOut)
        {
            var array = new JsonArray(survey.Sound.Select(e => (JsonNode?)new JsonObject
            {
                ["name"] = e.Name,
                ["iteration"] = e.Iteration,
                ["bytes"] = e.Bytes,
                ["logical_bytes"] = e.LogicalBytes,
                ["written_bytes"] = e.WrittenBytes,
                ["tensors"] = e.Tensors,
                ["created_utc"] = e.CreatedUtc.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
                ["last"] = e.Name == survey.Last,
            }).ToArray());
            var damaged = new JsonArray(survey.Damaged.Select(d => (JsonNode?)new JsonObject { ["name"] = d.Name, ["error"] = d.Problem }).ToArray());
            context.Out.WriteLine(new JsonObject
            {
                ["dir"] = Path.GetFullPath(dir),
                ["last"] = survey.Last,
                ["last_error"] = survey.TagProblem,
                ["checkpoints"] = array,
                ["damaged"] = damaged,
            }.ToJsonString());
            return 0;
        }
        // LOGICAL: tensor bytes in the state; WRITTEN: bytes this save wrote (less when it reused unchanged tensors).
        var table = new CliTable(new("", 1), new("NAME", 24), new("ITERATION", 10, Right: true), new("LOGICAL", 14, Right: true), new("WRITTEN", 14, Right: true), new("CREATED (UTC)", 20));
        foreach (var e in survey.Sound)
        {
            table.Add(e.Name == survey.Last ? "*" : " ", e.Name, e.Iteration?.ToString(CultureInfo.InvariantCulture) ?? "-", Bytes(e.LogicalBytes), Bytes(e.WrittenBytes), $"{e.CreatedUtc.UtcDateTime:yyyy-MM-dd HH:mm:ss}");
        }
        table.Write(context);
        foreach (var d in survey.Damaged) context.Out.WriteLine($"! {d.Name,-24} DAMAGED: {d.Problem}");
        if (survey.Damaged.Count > 0) context.Out.WriteLine("! = damaged, cannot be loaded (ckpt verify DIR/NAME for details)");
        if (survey.TagProblem is not null) context.Out.WriteLine($"last_checkpoint: {survey.TagProblem}");
        else context.Out.WriteLine(survey.Last is null ? "no checkpoint is tagged last" : $"* = last_checkpoint ({survey.Last})");
        return 0;
    }

    /// <summary>A byte count as the tables print it: digits grouped by commas ("1,048,576").</summary>
    public static string Bytes(long bytes) => bytes.ToString("N0", CultureInfo.InvariantCulture);

    /// <summary>A tensor shape as the tables print it: "[2, 8]", "[]" for a scalar.</summary>
    public static string Shape(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";

    /// <summary>The table of tensors `ckpt inspect` prints, for native checkpoints and for files.</summary>
    public static CliTable TensorTable() => new(new("KEY", 56), new("DTYPE", 7), new("SHAPE", 20), new("BYTES", 12, Right: true));

    /// <summary>
    /// <c>ckpt inspect PATH</c>: a native checkpoint's identity, tensors (key, dtype, shape, bytes), sharded tensors and non-tensor
    /// values (from its manifest alone, without reading tensor bytes), or every tensor and value of a
    /// <c>.pth</c>/<c>.pt</c>/<c>.pkl</c>/<c>.pyth</c>/<c>.safetensors</c> file.
    /// </summary>
    public static Command Inspect(CliContext context) => OnePath("inspect", "tensors (key, dtype, shape, bytes) and non-tensor values",
        "a native checkpoint folder, or a .pth/.pt, .pkl, .pyth or .safetensors file", context, InspectAsync);

    /// <summary>A command that takes one PATH and --json: inspect, verify, compact.</summary>
    private static Command OnePath(string name, string description, string pathDescription, CliContext context, Func<string, bool, CliContext, Task<int>> run)
    {
        var path = CliOptions.Positional("PATH", pathDescription);
        var json = CliOptions.Json();
        var command = new Command(name, description).With(path, json);
        command.SetAction(parse => run(parse.GetValue(path)!, parse.GetValue(json), context));
        return command;
    }

    private static async Task<int> InspectAsync(string path, bool json, CliContext context)
    {
        if (CheckpointTrees.IsInteropFile(path)) return InteropCommands.InspectFile(path, json, context);
        var (store, key) = NativeCheckpointFiles.Locate(path);
        var manifest = await NativeCheckpointReader.ReadManifestAsync(store, key);
        var values = new JsonObject();
        CollectValues(manifest.State, "", values);
        if (json)
        {
            context.Out.WriteLine(new JsonObject
            {
                ["name"] = manifest.Name,
                ["iteration"] = manifest.Iteration,
                ["world_size"] = manifest.WorldSize,
                ["created_utc"] = manifest.CreatedUtc.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
                ["total_bytes"] = manifest.TotalBytes,
                ["written_bytes"] = manifest.WrittenBytes,
                ["shards"] = new JsonArray(manifest.Shards.Select(s => (JsonNode?)new JsonObject { ["path"] = s.Path, ["bytes"] = s.Bytes, ["checksum"] = s.Checksum, ["reused_from"] = s.Checkpoint }).ToArray()),
                ["tensors"] = new JsonArray(manifest.Tensors.Select(t => (JsonNode?)new JsonObject
                {
                    ["key"] = t.Key,
                    ["dtype"] = t.Value.DType,
                    ["shape"] = new JsonArray(t.Value.Shape.Select(d => (JsonNode?)d).ToArray()),
                    ["bytes"] = t.Value.LogicalLength,
                    ["stored_bytes"] = t.Value.ByteLength,
                    ["encoding"] = t.Value.Encoding,
                    ["shard"] = t.Value.Shard,
                    ["hash"] = t.Value.Hash,
                }).ToArray()),
                ["sharded"] = new JsonArray(manifest.Sharded.Select(t => (JsonNode?)new JsonObject
                {
                    ["key"] = t.Key,
                    ["dtype"] = t.Value.DType,
                    ["shape"] = new JsonArray(t.Value.Shape.Select(d => (JsonNode?)d).ToArray()),
                    ["chunks"] = new JsonArray(t.Value.Chunks.Select(c => (JsonNode?)new JsonObject
                    {
                        ["tensor"] = c.Tensor,
                        ["offsets"] = c.Offsets is null ? null : new JsonArray(c.Offsets.Select(o => (JsonNode?)o).ToArray()),
                        ["flat_offset"] = c.FlatOffset,
                    }).ToArray()),
                }).ToArray()),
                ["values"] = values,
            }.ToJsonString());
            return 0;
        }
        context.Out.WriteLine($"checkpoint {manifest.Name}  iteration {manifest.Iteration?.ToString(CultureInfo.InvariantCulture) ?? "-"}  world size {manifest.WorldSize}  created {manifest.CreatedUtc.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z  {manifest.TotalBytes:N0} bytes in {manifest.Shards.Count} shard(s){(manifest.WrittenBytes < manifest.TotalBytes ? $" ({manifest.WrittenBytes:N0} written by this save, the rest reused from {string.Join(", ", manifest.ReusedFrom)})" : "")}");
        var table = TensorTable();
        foreach (var (k, t) in manifest.Tensors) table.Add(k, t.DType, Shape(t.Shape), Bytes(t.LogicalLength));
        table.Write(context);
        var encoded = manifest.Tensors.Values.Where(t => t.Encoding == BytegroupCodec.Name).ToList();
        if (encoded.Count > 0)
        {
            var (raw, stored) = (encoded.Sum(t => t.LogicalLength), encoded.Sum(t => t.ByteLength));
            context.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"compressed ({encoded[0].Encoding}): {encoded.Count} of {manifest.Tensors.Count} tensors, {stored:N0} bytes stored for {raw:N0} ({(double)raw / stored:F2}x); `ckpt compact --decompress` makes plain safetensors shards"));
        }
        var blockMapped = manifest.Tensors.Values.Where(t => t.Encoding == BlockMap.Encoding).ToList();
        if (blockMapped.Count > 0)
        {
            var (raw, stored) = (blockMapped.Sum(t => t.LogicalLength), blockMapped.Sum(t => t.ByteLength));
            context.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"block-mapped (blocks): {blockMapped.Count} of {manifest.Tensors.Count} tensors, {stored:N0} bytes written by this save for {raw:N0}, the other blocks referenced; `ckpt compact --decompress` makes plain safetensors shards"));
        }
        if (manifest.Sharded.Count > 0)
        {
            context.Out.WriteLine("sharded tensors (the entries KEY@... above are their chunks):");
            foreach (var (k, t) in manifest.Sharded) context.Out.WriteLine($"  {k}  {t.DType} {Shape(t.Shape)} in {t.Chunks.Count} chunk(s)");
        }
        context.Out.WriteLine("non-tensor values:");
        foreach (var (k, v) in values) context.Out.WriteLine($"  {k} = {v?.ToJsonString() ?? "null"}");
        return 0;
    }

    /// <summary>Flattens the non-tensor leaves of the state into "path": value pairs.</summary>
    private static void CollectValues(JsonNode? node, string path, JsonObject into)
    {
        switch (node)
        {
            case JsonObject o when o.ContainsKey(StateTree.TensorMarker) && o.Count == 1:
                return;
            case JsonObject o:
                foreach (var (k, v) in o) CollectValues(v, StateTree.Child(path, k), into);
                return;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++) CollectValues(a[i], StateTree.Child(path, i.ToString(CultureInfo.InvariantCulture)), into);
                return;
            default:
                into[path] = node?.DeepClone();
                return;
        }
    }

    /// <summary>
    /// <c>ckpt verify PATH</c>: reads every shard of a native checkpoint and checks its length, header and checksum against the
    /// manifest. Exit 0 when sound; exit 1, with the first problem, when not.
    /// </summary>
    public static Command Verify(CliContext context) =>
        OnePath("verify", "check every shard's length, header and checksum (exit 1 if not sound)", "a native checkpoint folder", context, VerifyAsync);

    private static async Task<int> VerifyAsync(string path, bool json, CliContext context)
    {
        try
        {
            var (store, key) = NativeCheckpointFiles.Locate(path);
            var manifest = await NativeCheckpointReader.ReadManifestAsync(store, key);
            await CliProgress.RunAsync(context, "verify", manifest.TotalBytes, async bar =>
            {
                long done = 0;
                await NativeCheckpointReader.VerifyAsync(store, key, manifest, new SyncProgress(n => bar.Update(done += n, "bytes verified")));
                bar.Update(manifest.TotalBytes, "bytes verified"); // the reports count tensor data; the shards' headers make up the rest
            });
            Report(context, json, ok: true, $"OK: {manifest.Name}: {manifest.Shards.Count} shard(s), {manifest.Tensors.Count} tensors, {manifest.TotalBytes:N0} bytes; lengths, headers and checksums match the manifest");
            return 0;
        }
        catch (Exception e) when (e is CheckpointFormatException or FileNotFoundException or IOException)
        {
            Report(context, json, ok: false, $"FAILED: {CliFailure.OneLine(e.Message)}");
            return 1;
        }
    }

    /// <summary>
    /// <c>ckpt compact PATH</c>: rewrites an incremental checkpoint so it holds every shard itself and no longer depends on
    /// earlier checkpoints (verified before it is rewritten); a self-contained checkpoint is left as it is.
    /// </summary>
    public static Command Compact(CliContext context)
    {
        var path = CliOptions.Positional("PATH", "a native checkpoint folder");
        var decompress = new Option<bool>("--decompress") { Description = "also store every tensor uncompressed, so that the shards are plain safetensors files any reader opens" };
        var json = CliOptions.Json();
        var command = new Command("compact", "rewrite an incremental (or, with --decompress, a compressed) checkpoint as self-contained plain shards (verified first)").With(path, decompress, json);
        command.SetAction(parse => CompactAsync(parse.GetValue(path)!, parse.GetValue(decompress), parse.GetValue(json), context));
        return command;
    }

    private static async Task<int> CompactAsync(string path, bool decompress, bool json, CliContext context)
    {
        var (store, key) = NativeCheckpointFiles.Locate(path);
        var written = await new LocalBackend(store.Root, logger: context.Logger("compact")).CompactAsync(key, decompress);
        var message = written is { } bytes
            ? $"compacted {key}: wrote {bytes:N0} bytes; it no longer depends on earlier checkpoints{(decompress ? " and its shards are plain safetensors" : "")}"
            : $"{key} is already self-contained{(decompress ? " and uncompressed" : "")}; nothing written";
        if (json) context.Out.WriteLine(new JsonObject { ["name"] = key, ["compacted"] = written is not null, ["bytes_written"] = written ?? 0 }.ToJsonString());
        else context.Out.WriteLine(message);
        return 0;
    }

    private static void Report(CliContext context, bool json, bool ok, string message)
    {
        context.Out.WriteLine(json ? JsonSerializer.Serialize(new { ok, message, error = ok ? null : message }) : message);
    }
}
