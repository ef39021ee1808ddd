using Orleans.Serialization.Cloning;

namespace Checkpointing.Contracts;

// The checkpoint model (src/Abstractions) carries no Orleans attributes, so that the core library has no Orleans in
// its closure. Grain messages and state carry those types through these surrogates, whose field ids are the ones the
// types had when they were annotated themselves: the bytes on the wire and in grain storage are unchanged
// (tests/Grains.Tests/WireFormatTests.cs). A record's codec writes its primary-constructor section (empty here: the ids
// were on the properties) and an end-of-base marker before the fields; IncludePrimaryConstructorParameters makes the
// surrogates write that marker too. The types are immutable records, so a copy is the instance itself.

[GenerateSerializer(IncludePrimaryConstructorParameters = true)]
internal struct ShardInfoSurrogate
{
    [Id(0)] public string Path;
    [Id(1)] public long Bytes;
    [Id(2)] public string Checksum;
    [Id(3)] public string? Checkpoint;
}

[RegisterConverter]
internal sealed class ShardInfoConverter : IConverter<ShardInfo, ShardInfoSurrogate>
{
    public ShardInfo ConvertFromSurrogate(in ShardInfoSurrogate surrogate) => new(surrogate.Path, surrogate.Bytes, surrogate.Checksum, surrogate.Checkpoint);

    public ShardInfoSurrogate ConvertToSurrogate(in ShardInfo value) =>
        new() { Path = value.Path, Bytes = value.Bytes, Checksum = value.Checksum, Checkpoint = value.Checkpoint };
}

[RegisterCopier]
internal sealed class ShardInfoCopier : ShallowCopier<ShardInfo>;

[GenerateSerializer(IncludePrimaryConstructorParameters = true)]
internal struct TensorInfoSurrogate
{
    [Id(0)] public int Shard;
    [Id(1)] public string DType;
    [Id(2)] public long[] Shape;
    [Id(3)] public long[] DataOffsets;
    [Id(4)] public string? Hash;
    [Id(5)] public string? Encoding;
    [Id(6)] public long? RawLength;
}

[RegisterConverter]
internal sealed class TensorInfoConverter : IConverter<TensorInfo, TensorInfoSurrogate>
{
    public TensorInfo ConvertFromSurrogate(in TensorInfoSurrogate surrogate) => new(surrogate.Shard, surrogate.DType, surrogate.Shape, surrogate.DataOffsets, surrogate.Hash, surrogate.Encoding, surrogate.RawLength);

    public TensorInfoSurrogate ConvertToSurrogate(in TensorInfo value) =>
        new() { Shard = value.Shard, DType = value.DType, Shape = value.Shape, DataOffsets = value.DataOffsets, Hash = value.Hash, Encoding = value.Encoding, RawLength = value.RawLength };
}

[RegisterCopier]
internal sealed class TensorInfoCopier : ShallowCopier<TensorInfo>;

[GenerateSerializer(IncludePrimaryConstructorParameters = true)]
internal struct ShardedTensorInfoSurrogate
{
    [Id(0)] public string DType;
    [Id(1)] public long[] Shape;
    [Id(2)] public IReadOnlyList<TensorChunk> Chunks;
}

[RegisterConverter]
internal sealed class ShardedTensorInfoConverter : IConverter<ShardedTensorInfo, ShardedTensorInfoSurrogate>
{
    public ShardedTensorInfo ConvertFromSurrogate(in ShardedTensorInfoSurrogate surrogate) => new(surrogate.DType, surrogate.Shape, surrogate.Chunks);

    public ShardedTensorInfoSurrogate ConvertToSurrogate(in ShardedTensorInfo value) => new() { DType = value.DType, Shape = value.Shape, Chunks = value.Chunks };
}

[RegisterCopier]
internal sealed class ShardedTensorInfoCopier : ShallowCopier<ShardedTensorInfo>;

[GenerateSerializer(IncludePrimaryConstructorParameters = true)]
internal struct TensorChunkSurrogate
{
    [Id(0)] public string Tensor;
    [Id(1)] public long[]? Offsets;
    [Id(2)] public long? FlatOffset;
}

[RegisterConverter]
internal sealed class TensorChunkConverter : IConverter<TensorChunk, TensorChunkSurrogate>
{
    public TensorChunk ConvertFromSurrogate(in TensorChunkSurrogate surrogate) => new(surrogate.Tensor, surrogate.Offsets, surrogate.FlatOffset);

    public TensorChunkSurrogate ConvertToSurrogate(in TensorChunk value) => new() { Tensor = value.Tensor, Offsets = value.Offsets, FlatOffset = value.FlatOffset };
}

[RegisterCopier]
internal sealed class TensorChunkCopier : ShallowCopier<TensorChunk>;

[GenerateSerializer(IncludePrimaryConstructorParameters = true)]
internal struct PeriodicPolicySurrogate
{
    [Id(0)] public int Period;
    [Id(1)] public long? MaxIter;
    [Id(2)] public int? MaxToKeep;
    [Id(3)] public string FilePrefix;
    [Id(4)] public int? MemoryPeriod;
}

[RegisterConverter]
internal sealed class PeriodicPolicyConverter : IConverter<PeriodicPolicy, PeriodicPolicySurrogate>
{
    public PeriodicPolicy ConvertFromSurrogate(in PeriodicPolicySurrogate surrogate) => new(surrogate.Period, surrogate.MaxIter, surrogate.MaxToKeep, surrogate.FilePrefix, surrogate.MemoryPeriod);

    public PeriodicPolicySurrogate ConvertToSurrogate(in PeriodicPolicy value) =>
        new() { Period = value.Period, MaxIter = value.MaxIter, MaxToKeep = value.MaxToKeep, FilePrefix = value.FilePrefix, MemoryPeriod = value.MemoryPeriod };
}

[RegisterCopier]
internal sealed class PeriodicPolicyCopier : ShallowCopier<PeriodicPolicy>;
