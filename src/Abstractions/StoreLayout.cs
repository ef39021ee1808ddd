using System.Text.RegularExpressions;

namespace Checkpointing.Abstractions;

/// <summary>
/// The one owner of where things live in a store (docs/format.md): a run's checkpoints under
/// <c>tenants/TENANT/runs/RUN/</c>, a checkpoint's folder <c>…/NAME/</c> holding <c>manifest.json</c> and shards
/// <c>shard-IIIII-of-NNNNN-ATTEMPT.safetensors</c>. Every key is built and taken apart here, nowhere else.
/// </summary>
public static partial class StoreLayout
{
    /// <summary>The document whose presence makes a checkpoint folder a checkpoint.</summary>
    public const string ManifestFileName = "manifest.json";

    [GeneratedRegex("^shard-[0-9]{5}-of-[0-9]{5}-(?<attempt>[0-9a-f]{8})\\.safetensors$", RegexOptions.CultureInvariant)]
    private static partial Regex ShardPattern();

    /// <summary>Where a cluster run's checkpoints live: per tenant, per run.</summary>
    public static string RunPrefix(string tenant, string run) => $"tenants/{tenant}/runs/{run}";

    /// <summary>The folder of checkpoint <paramref name="name"/> under a run's prefix ("" for a folder at the store's root).</summary>
    public static string CheckpointKey(string runPrefix, string name) => runPrefix.Length == 0 ? name : $"{runPrefix}/{name}";

    /// <summary>The key of file <paramref name="fileName"/> (the manifest or a shard) directly in a checkpoint folder.</summary>
    public static string FileKey(string checkpointKey, string fileName) => $"{checkpointKey}/{fileName}";

    /// <summary>The checkpoint folder and the file name of a key <see cref="FileKey"/> built.</summary>
    /// <exception cref="ArgumentException"><paramref name="key"/> is not a file in a folder.</exception>
    public static (string CheckpointKey, string FileName) SplitFileKey(string key)
    {
        var slash = key.LastIndexOf('/');
        return slash > 0 && slash < key.Length - 1 ? (key[..slash], key[(slash + 1)..]) : throw new ArgumentException($"'{key}' is not FOLDER/FILE.", nameof(key));
    }

    /// <summary>The key of the manifest of checkpoint folder <paramref name="checkpointKey"/>.</summary>
    public static string ManifestKey(string checkpointKey) => FileKey(checkpointKey, ManifestFileName);

    /// <summary>The checkpoint folder a manifest key names.</summary>
    public static string CheckpointKeyOf(string manifestKey) =>
        manifestKey.EndsWith("/" + ManifestFileName, StringComparison.Ordinal)
            ? manifestKey[..^(ManifestFileName.Length + 1)]
            : throw new ArgumentException($"'{manifestKey}' is not the key of a manifest.", nameof(manifestKey));

    /// <summary>The checkpoint name of a checkpoint folder key: its last segment.</summary>
    public static string NameOf(string checkpointKey) => checkpointKey[(checkpointKey.LastIndexOf('/') + 1)..];

    /// <summary>The file name of shard <paramref name="index"/> (0-based) of <paramref name="count"/> written by <paramref name="attempt"/>, an id of 8 lowercase hex digits.</summary>
    public static string ShardName(int index, int count, string attempt) => $"shard-{index:D5}-of-{count:D5}-{attempt}.safetensors";

    /// <summary>The key of shard <paramref name="index"/> of <paramref name="count"/> of an attempt in a checkpoint folder.</summary>
    public static string ShardKey(string checkpointKey, int index, int count, string attempt) => FileKey(checkpointKey, ShardName(index, count, attempt));

    /// <summary>The attempt id of a shard file name, or null when the name is not one of our shards.</summary>
    public static string? AttemptOf(string fileName) => ShardPattern().Match(fileName) is { Success: true } m ? m.Groups["attempt"].Value : null;

    /// <summary>Whether <paramref name="fileName"/> is the name of one of our shards, of any attempt.</summary>
    public static bool IsShard(string fileName) => ShardPattern().IsMatch(fileName);

    /// <summary>True for a name a native checkpoint folder may hold.</summary>
    public static bool IsOurs(string fileName) => fileName == ManifestFileName || IsShard(fileName);

    /// <summary>
    /// Where a manifest's shard is stored: in the checkpoint's own folder, or, for a shard an incremental
    /// checkpoint reuses, in the folder of the earlier checkpoint <see cref="ShardInfo.Checkpoint"/> beside it.
    /// </summary>
    public static string ShardKey(string checkpointKey, ShardInfo shard) =>
        FileKey(shard.Checkpoint is null ? checkpointKey : SiblingKey(checkpointKey, shard.Checkpoint), shard.Path);

    /// <summary>
    /// "HOLDER/SHARD": how a catalog records a shard of checkpoint HOLDER that a later checkpoint of the same run reuses.
    /// </summary>
    public static string ReusedShard(string holder, string shardPath) => $"{holder}/{shardPath}";

    /// <summary>The holder and shard file of a <see cref="ReusedShard"/> reference.</summary>
    public static (string Holder, string ShardPath) ParseReusedShard(string reference)
    {
        var slash = reference.IndexOf('/');
        return slash > 0 ? (reference[..slash], reference[(slash + 1)..]) : throw new ArgumentException($"'{reference}' is not HOLDER/SHARD.", nameof(reference));
    }

    /// <summary>The key of checkpoint <paramref name="name"/> in the same run (folder) as <paramref name="checkpointKey"/>.</summary>
    public static string SiblingKey(string checkpointKey, string name)
    {
        var slash = checkpointKey.LastIndexOf('/');
        return slash < 0 ? name : $"{checkpointKey[..(slash + 1)]}{name}";
    }

    /// <summary>The key of the run (folder) that holds <paramref name="checkpointKey"/>, with its trailing '/': "" for a checkpoint at the store's root.</summary>
    public static string RunPrefixOf(string checkpointKey)
    {
        var slash = checkpointKey.LastIndexOf('/');
        return slash < 0 ? "" : checkpointKey[..(slash + 1)];
    }

    /// <summary>The file name of a key directly inside <paramref name="checkpointKey"/>, or null when the key is deeper or elsewhere.</summary>
    public static string? FileIn(string checkpointKey, string key) =>
        key.Length > checkpointKey.Length + 1 && key.StartsWith(checkpointKey, StringComparison.Ordinal) && key[checkpointKey.Length] == '/'
        && key.IndexOf('/', checkpointKey.Length + 1) < 0
            ? key[(checkpointKey.Length + 1)..]
            : null;

    /// <summary>The checkpoint folder name directly under <paramref name="runPrefix"/>/ that <paramref name="key"/> lies in, or null.</summary>
    public static string? FolderUnder(string runPrefix, string key)
    {
        var start = runPrefix.Length + 1;
        if (key.Length <= start || !key.StartsWith(runPrefix, StringComparison.Ordinal) || key[runPrefix.Length] != '/') return null;
        var slash = key.IndexOf('/', start);
        return slash > start ? key[start..slash] : null;
    }
}
