using Checkpointing.Abstractions;
using CsCheck;

namespace Checkpointing.Formats.Tests.Properties;

/// <summary>The one owner of store keys builds and parses them as inverses of each other.</summary>
public sealed class StoreLayoutProperties
{
    private static readonly Gen<string> Name = Gen.String[Gen.Char["abcxyz0189_-."], 1, 12].Where(CheckpointName.IsValid);
    private static readonly Gen<string> Attempt = Gen.String[Gen.Char["0123456789abcdef"], 8, 8];

    [Fact]
    public void Keys_built_from_parts_parse_back_to_those_parts() =>
        Gen.Select(Name, Name, Name, Attempt, Gen.Int[1, 8192]).Sample((tenant, run, name, attempt, world) =>
        {
            var rank = world - 1;
            var folder = StoreLayout.CheckpointKey(StoreLayout.RunPrefix(tenant, run), name);
            var shardKey = StoreLayout.ShardKey(folder, rank, world, attempt);
            var file = StoreLayout.FileIn(folder, shardKey);
            var (holder, path) = StoreLayout.ParseReusedShard(StoreLayout.ReusedShard(name, file!));
            return StoreLayout.CheckpointKeyOf(StoreLayout.ManifestKey(folder)) == folder
                && StoreLayout.NameOf(folder) == name
                && StoreLayout.FolderUnder(StoreLayout.RunPrefix(tenant, run), shardKey) == name
                && StoreLayout.AttemptOf(file!) == attempt && StoreLayout.IsShard(file!) && StoreLayout.IsOurs(file!)
                && (holder, path) == (name, file)
                && StoreLayout.SplitFileKey(shardKey) == (folder, file!);
        });

    [Fact]
    public void A_key_deeper_or_beside_the_folder_is_not_a_file_in_it()
    {
        Assert.Null(StoreLayout.FileIn("t/r/a", "t/r/a/sub/x"));
        Assert.Null(StoreLayout.FileIn("t/r/a", "t/r/ab/x"));
        Assert.Equal("x", StoreLayout.FileIn("t/r/a", "t/r/a/x"));
        Assert.Throws<ArgumentException>(() => StoreLayout.CheckpointKeyOf("t/r/a/shard.safetensors"));
        Assert.Throws<ArgumentException>(() => StoreLayout.SplitFileKey("manifest.json"));
        Assert.Throws<ArgumentException>(() => StoreLayout.SplitFileKey("t/r/a/"));
    }

    [Fact]
    public void Max_to_keep_keeps_the_newest_periodic_checkpoints_and_never_evicts_the_tagged_or_a_final_one() =>
        Gen.Select(Gen.Int[1, 5], Gen.Int[0, 12], Gen.Int[-1, 11], Gen.Bool).Sample((keep, count, taggedIndex, withFinal) =>
        {
            var policy = new PeriodicPolicy(10, MaxToKeep: keep);
            var names = Enumerable.Range(0, count).Select(i => policy.PeriodicName(i * 10 + 9)).ToList();
            if (withFinal) names.Insert(0, policy.FinalName);
            var tagged = taggedIndex >= 0 && taggedIndex < count ? policy.PeriodicName(taggedIndex * 10 + 9) : null;
            var evicted = policy.Evictions(names, tagged);
            var kept = names.Except(evicted).ToList();
            return !evicted.Contains(policy.FinalName) && (tagged is null || !evicted.Contains(tagged))
                && names.Where(policy.IsPeriodicName).TakeLast(keep).All(kept.Contains)
                && evicted.Count == Math.Max(0, count - keep) - (tagged is not null && names.IndexOf(tagged) - (withFinal ? 1 : 0) < count - keep ? 1 : 0);
        });
}
