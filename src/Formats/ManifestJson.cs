using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Unicode;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>Reads and writes manifest.json, validating every field so a damaged manifest fails with a precise message.</summary>
public static class ManifestJson
{
    /// <summary>The manifest's file name in a checkpoint folder, <c>manifest.json</c>.</summary>
    public const string FileName = StoreLayout.ManifestFileName;

    /// <summary>The longest manifest accepted, in bytes (256 MiB): a bound on what a damaged or hostile file can make a reader allocate.</summary>
    public const long MaxBytes = 256L << 20;

    /// <summary>Nesting allowed in manifest.json, user state included (the parser and the state tree recurse this deep).</summary>
    public const int MaxJsonDepth = 64;

    /// <summary>Shard entries a manifest may list.</summary>
    public const int MaxShards = 100_000;

    /// <summary>Entries the tensor index may hold (and, separately, the sharded section).</summary>
    public const int MaxTensors = 1_000_000;

    /// <summary>
    /// JSON tokens (values, property names, brackets) allowed; counted before any node is built, because the node tree
    /// costs tens of bytes per token. A tensor's index entry is about 17 tokens.
    /// </summary>
    public const long MaxTokens = 8_000_000;

    /// <summary>
    /// The manifest as indented UTF-8 JSON (docs/format.md#native-checkpoint-layout); the <c>sharded</c> section only when there
    /// are sharded tensors. Nothing is validated here: <see cref="ManifestBuilder.Serialize"/> also parses the result back.
    /// </summary>
    public static byte[] Serialize(CheckpointManifest m)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("format_version", m.FormatVersion);
            w.WriteString("run", m.Run);
            w.WriteString("name", m.Name);
            if (m.Iteration is { } it) w.WriteNumber("iteration", it); else w.WriteNull("iteration");
            w.WriteNumber("world_size", m.WorldSize);
            w.WriteString("created_utc", m.CreatedUtc.UtcDateTime.ToString("O"));
            w.WriteStartArray("shards");
            foreach (var s in m.Shards)
            {
                w.WriteStartObject();
                w.WriteString("path", s.Path);
                w.WriteNumber("bytes", s.Bytes);
                w.WriteString("checksum", s.Checksum);
                if (s.Checkpoint is not null) w.WriteString("checkpoint", s.Checkpoint);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("tensors");
            foreach (var (key, t) in m.Tensors)
            {
                w.WriteStartObject(key);
                w.WriteNumber("shard", t.Shard);
                w.WriteString("dtype", t.DType);
                WriteLongs(w, "shape", t.Shape);
                WriteLongs(w, "data_offsets", t.DataOffsets);
                if (t.Hash is not null) w.WriteString("hash", t.Hash);
                if (t.Encoding is not null) w.WriteString("encoding", t.Encoding);
                if (t.RawLength is { } raw) w.WriteNumber("raw_bytes", raw);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            if (m.Sharded.Count > 0) WriteSharded(w, m.Sharded);
            w.WritePropertyName("state");
            m.State.WriteTo(w);
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    private static void WriteSharded(Utf8JsonWriter w, IReadOnlyDictionary<string, ShardedTensorInfo> sharded)
    {
        w.WriteStartObject("sharded");
        foreach (var (key, t) in sharded)
        {
            w.WriteStartObject(key);
            w.WriteString("dtype", t.DType);
            WriteLongs(w, "shape", t.Shape);
            w.WriteStartArray("chunks");
            foreach (var c in t.Chunks)
            {
                w.WriteStartObject();
                w.WriteString("tensor", c.Tensor);
                if (c.Offsets is not null) WriteLongs(w, "offsets", c.Offsets);
                if (c.FlatOffset is { } flat) w.WriteNumber("flat_offset", flat);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private static void WriteLongs(Utf8JsonWriter w, string name, long[] values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }

    /// <summary>
    /// Parses and validates a manifest: every field's type and range, size limits, a supported format version, index
    /// entries whose dtype × shape match their offsets, complete sharded tensors, and state references that the index holds.
    /// </summary>
    /// <param name="json">the manifest's bytes</param>
    /// <param name="source">the name errors report, usually the manifest's store key</param>
    /// <exception cref="CheckpointFormatException">The manifest fails any check; its <see cref="CheckpointFormatException.Check"/> says which.</exception>
    public static CheckpointManifest Parse(ReadOnlySpan<byte> json, string source)
    {
        if (json.Length > MaxBytes) throw new CheckpointFormatException(source, "manifest length", $"{json.Length} bytes exceeds the limit of {MaxBytes}");
        if (!Utf8.IsValid(json)) throw new CheckpointFormatException(source, "manifest JSON", "the file is not valid UTF-8");
        JsonObject root;
        try
        {
            CountTokens(json, source);
            // Duplicate keys fail here, as a format error naming the file (JsonObject would throw a bare ArgumentException).
            var options = new JsonDocumentOptions { AllowDuplicateProperties = false, MaxDepth = MaxJsonDepth };
            root = JsonNode.Parse(json, documentOptions: options) as JsonObject ?? throw new CheckpointFormatException(source, "manifest", "top level is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(source, "manifest JSON", e.Message, e);
        }
        var version = Int(root, "format_version", source);
        if (version is < CheckpointManifest.OldestReadableFormatVersion or > CheckpointManifest.CurrentFormatVersion)
            throw new CheckpointFormatException(source, "manifest version", $"format_version {version} is not supported (this build reads {CheckpointManifest.OldestReadableFormatVersion} to {CheckpointManifest.CurrentFormatVersion})");
        var name = Str(root, "name", source);
        if (!CheckpointName.IsValid(name)) throw Bad(source, $"name '{name}' is not a valid checkpoint name");

        var shards = new List<ShardInfo>();
        var shardNodes = Array(root, "shards", source);
        if (shardNodes.Count > MaxShards) throw new CheckpointFormatException(source, "shard count", $"{shardNodes.Count} shards exceed the limit of {MaxShards}");
        foreach (var node in shardNodes)
        {
            var s = node as JsonObject ?? throw Bad(source, "a shard entry is not an object");
            var path = Str(s, "path", source);
            try { StoreKey.Validate(path); }
            catch (ArgumentException e) { throw new CheckpointFormatException(source, "manifest", $"shard path: {e.Message}", e); }
            var checksum = Str(s, "checksum", source);
            if (!ShardChecksum.IsWellFormed(checksum)) throw Bad(source, $"shard '{path}' has malformed checksum '{checksum}'");
            var bytes = Long(s, "bytes", source);
            if (bytes < 8) throw Bad(source, $"shard '{path}' has impossible length {bytes}");
            var owner = OptionalStr(s, "checkpoint", source);
            if (owner is not null && (!CheckpointName.IsValid(owner) || owner == name))
                throw Bad(source, $"shard '{path}' names checkpoint '{owner}', which is not another checkpoint's name");
            shards.Add(new ShardInfo(path, bytes, checksum, owner));
        }

        var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        var tensorsNode = root["tensors"] as JsonObject ?? throw Bad(source, "'tensors' is missing or not an object");
        if (tensorsNode.Count > MaxTensors) throw new CheckpointFormatException(source, "tensor count", $"{tensorsNode.Count} tensors exceed the limit of {MaxTensors}");
        foreach (var (key, node) in tensorsNode)
        {
            var t = node as JsonObject ?? throw Bad(source, $"tensor '{key}' is not an object");
            var shard = Int(t, "shard", source);
            if (shard < 0 || shard >= shards.Count) throw Bad(source, $"tensor '{key}' names shard {shard}, but there are {shards.Count}");
            var dtype = Str(t, "dtype", source);
            if (!TensorDTypes.TryParse(dtype, out var parsed)) throw new CheckpointFormatException(source, "dtype", $"tensor '{key}' has unknown dtype '{dtype}' (supported: {TensorDTypes.SupportedNames})");
            var shape = Longs(t, "shape", source);
            if (shape.Length > SafetensorsHeader.MaxRank) throw new CheckpointFormatException(source, "shape", $"tensor '{key}' has {shape.Length} dimensions, more than the limit of {SafetensorsHeader.MaxRank}");
            var offsets = Longs(t, "data_offsets", source);
            if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0]) throw Bad(source, $"tensor '{key}' has bad data_offsets");
            long expected;
            try { expected = TensorDTypes.ByteLength(parsed, shape); }
            catch (Exception e) when (e is FormatException or OverflowException) { throw Bad(source, $"tensor '{key}': {e.Message}"); }
            var hash = OptionalStr(t, "hash", source);
            if (hash is not null && !TensorHash.IsWellFormed(hash)) throw Bad(source, $"tensor '{key}' has malformed hash '{hash}'");
            var encoding = OptionalStr(t, "encoding", source);
            if (encoding is null)
            {
                if (t["raw_bytes"] is not null) throw Bad(source, $"tensor '{key}' has raw_bytes but no encoding");
                if (expected != offsets[1] - offsets[0]) throw new CheckpointFormatException(source, "dtype x shape", $"tensor '{key}' needs {expected} bytes, offsets span {offsets[1] - offsets[0]}");
                tensors.Add(key, new TensorInfo(shard, dtype, shape, offsets, hash));
                continue;
            }
            // An encoded tensor (docs/compression.md): its raw length is its dtype x shape, its hash covers the decoded bytes.
            if (version < 4) throw Bad(source, $"format_version {version} has no encoded tensors (they came with version 4)");
            if (encoding is not (BytegroupCodec.Name or BlockMap.Encoding))
                throw new CheckpointFormatException(source, "encoding", $"tensor '{key}' has encoding '{encoding}', which this build cannot decode (it knows {BytegroupCodec.Name} and {BlockMap.Encoding})");
            var raw = Long(t, "raw_bytes", source);
            if (raw != expected) throw new CheckpointFormatException(source, "dtype x shape", $"tensor '{key}' needs {expected} bytes, raw_bytes records {raw}");
            if (hash is null) throw Bad(source, $"encoded tensor '{key}' has no hash of its decoded bytes");
            if (offsets[1] == offsets[0]) throw Bad(source, $"encoded tensor '{key}' stores no bytes");
            if (encoding == BlockMap.Encoding)
            {
                // Block-mapped (docs/compression.md#block-reuse): the entry holds a map and the blocks this checkpoint wrote.
                if (shape.Length == 0 || shape[0] == 0) throw Bad(source, $"block-mapped tensor '{key}' has no rows");
                if (shards[shard].Checkpoint is not null) throw Bad(source, $"block-mapped tensor '{key}' is indexed into a reused shard; its entry belongs in one of the checkpoint's own");
                if (offsets[1] - offsets[0] > BlockMap.MaxEntryLength(raw)) throw Bad(source, $"block-mapped tensor '{key}' stores {offsets[1] - offsets[0]} bytes, more than any map of {raw} bytes takes");
            }
            else
            {
                if (raw > BytegroupCodec.MaxTensorBytes) throw Bad(source, $"encoded tensor '{key}' has {raw} raw bytes, above the limit of {BytegroupCodec.MaxTensorBytes}");
                if (offsets[1] - offsets[0] > BytegroupCodec.MaxEncodedLength(raw, parsed.ElementSize()))
                    throw Bad(source, $"encoded tensor '{key}' stores {offsets[1] - offsets[0]} bytes, more than any encoding of {raw} bytes takes");
            }
            tensors.Add(key, new TensorInfo(shard, dtype, shape, offsets, hash, encoding, raw));
        }

        if (version < 3 && root["sharded"] is not null) throw Bad(source, $"format_version {version} has no sharded tensors (they came with version 3)");
        var sharded = ParseSharded(root, source);
        if (ShardedTensorCheck.Problem(tensors, sharded) is { } problem) throw new CheckpointFormatException(source, "sharded tensors", problem);
        var chunks = ShardedTensorInfo.ChunkKeys(sharded.Values);

        var state = root["state"] as JsonObject ?? throw Bad(source, "'state' is missing or not an object");
        var references = StateTree.TensorReferences(state).ToHashSet(StringComparer.Ordinal);
        var dangling = references.FirstOrDefault(r => !tensors.ContainsKey(r) && !sharded.ContainsKey(r));
        if (dangling is not null) throw Bad(source, $"state references tensor '{dangling}', which the index lacks");
        var chunkReference = references.FirstOrDefault(chunks.Contains);
        if (chunkReference is not null) throw Bad(source, $"state references '{chunkReference}', which is a chunk of a sharded tensor");
        var orphan = sharded.Keys.FirstOrDefault(k => !references.Contains(k));
        if (orphan is not null) throw Bad(source, $"sharded tensor '{orphan}' is not referenced by the state");

        var createdText = Str(root, "created_utc", source);
        if (!DateTimeOffset.TryParse(createdText, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var created))
            throw Bad(source, $"created_utc '{createdText}' is not a timestamp");

        return new CheckpointManifest
        {
            FormatVersion = version,
            Run = Str(root, "run", source),
            Name = name,
            Iteration = root["iteration"] is null ? null : Long(root, "iteration", source),
            WorldSize = Int(root, "world_size", source),
            CreatedUtc = created,
            Shards = shards,
            Tensors = tensors,
            Sharded = sharded,
            State = (JsonObject)state.DeepClone(),
        };
    }

    /// <summary>The optional "sharded" section (format 3): per tensor its dtype, global shape and chunks; coverage is checked by the caller.</summary>
    private static Dictionary<string, ShardedTensorInfo> ParseSharded(JsonObject root, string source)
    {
        var sharded = new Dictionary<string, ShardedTensorInfo>(StringComparer.Ordinal);
        if (root["sharded"] is null) return sharded;
        var node = root["sharded"] as JsonObject ?? throw Bad(source, "'sharded' is not an object");
        if (node.Count > MaxTensors) throw new CheckpointFormatException(source, "tensor count", $"{node.Count} sharded tensors exceed the limit of {MaxTensors}");
        foreach (var (key, value) in node)
        {
            var t = value as JsonObject ?? throw Bad(source, $"sharded tensor '{key}' is not an object");
            var dtype = Str(t, "dtype", source);
            if (!TensorDTypes.TryParse(dtype, out _)) throw new CheckpointFormatException(source, "dtype", $"sharded tensor '{key}' has unknown dtype '{dtype}' (supported: {TensorDTypes.SupportedNames})");
            var shape = Longs(t, "shape", source);
            if (shape.Length > SafetensorsHeader.MaxRank) throw new CheckpointFormatException(source, "shape", $"sharded tensor '{key}' has {shape.Length} dimensions, more than the limit of {SafetensorsHeader.MaxRank}");
            var chunks = new List<TensorChunk>();
            foreach (var c in Array(t, "chunks", source))
            {
                var chunk = c as JsonObject ?? throw Bad(source, $"a chunk of sharded tensor '{key}' is not an object");
                var offsets = chunk["offsets"] is null ? null : Longs(chunk, "offsets", source);
                var flat = chunk["flat_offset"] is null ? (long?)null : Long(chunk, "flat_offset", source);
                chunks.Add(new TensorChunk(Str(chunk, "tensor", source), offsets, flat));
            }
            sharded.Add(key, new ShardedTensorInfo(dtype, shape, chunks));
        }
        return sharded;
    }

    private static void CountTokens(ReadOnlySpan<byte> json, string source)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = MaxJsonDepth });
        long tokens = 0;
        while (reader.Read())
        {
            if (++tokens > MaxTokens) throw new CheckpointFormatException(source, "manifest size", $"more than the limit of {MaxTokens} JSON tokens");
        }
    }

    private static CheckpointFormatException Bad(string source, string detail) => new(source, "manifest", detail);

    private static JsonNode Field(JsonObject o, string name, string source) =>
        o[name] ?? throw Bad(source, $"field '{name}' is missing");

    private static string Str(JsonObject o, string name, string source) =>
        Field(o, name, source) is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : throw Bad(source, $"field '{name}' is not a string");

    private static string? OptionalStr(JsonObject o, string name, string source) =>
        o[name] is null ? null : Str(o, name, source);

    private static long Long(JsonObject o, string name, string source) =>
        Field(o, name, source) is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<long>(out var l) ? l : throw Bad(source, $"field '{name}' is not an integer");

    private static int Int(JsonObject o, string name, string source)
    {
        var l = Long(o, name, source);
        return l is >= int.MinValue and <= int.MaxValue ? (int)l : throw Bad(source, $"field '{name}' is out of range");
    }

    private static JsonArray Array(JsonObject o, string name, string source) =>
        Field(o, name, source) as JsonArray ?? throw Bad(source, $"field '{name}' is not an array");

    private static long[] Longs(JsonObject o, string name, string source) =>
        Array(o, name, source).Select(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<long>(out var l) && l >= 0
            ? l : throw Bad(source, $"field '{name}' holds a value that is not a non-negative integer")).ToArray();
}
