using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;

namespace Checkpointing.Grains.Tests;

/// <summary>The state that memory grain storage sends to its storage grains travels as raw bytes, not one field per byte.</summary>
public sealed class GrainStateCodecTests
{
    private static byte[] Serialized(bool withRawBytesCodec, int stateBytes)
    {
        var services = new ServiceCollection().AddSerializer();
        if (withRawBytesCodec) SiloBuilderExtensions.AddRawBytesCodec(services);
        using var provider = services.BuildServiceProvider();
        var state = new byte[stateBytes];
        new Random(7).NextBytes(state);
        IGrainState<ReadOnlyMemory<byte>> message = new GrainState<ReadOnlyMemory<byte>>(state, "etag-1");
        return provider.GetRequiredService<Serializer>().SerializeToArray(message);
    }

    [Fact]
    public void A_serialized_state_costs_its_bytes_plus_a_small_header()
    {
        const int size = 10_000;
        Assert.InRange(Serialized(withRawBytesCodec: true, size).Length, size, size + 128);
        // Orleans' generic codec, which the silo would use without the registration, writes at least a tag per byte.
        Assert.True(Serialized(withRawBytesCodec: false, size).Length > 2 * size);
    }

    [Fact]
    public void The_state_round_trips_and_copies_byte_for_byte()
    {
        var services = SiloBuilderExtensions.AddRawBytesCodec(new ServiceCollection().AddSerializer());
        using var provider = services.BuildServiceProvider();
        var state = Enumerable.Range(0, 4096).Select(i => (byte)(i * 31)).ToArray();
        IGrainState<ReadOnlyMemory<byte>> message = new GrainState<ReadOnlyMemory<byte>>(state, "etag-2");

        var back = provider.GetRequiredService<Serializer>().Deserialize<IGrainState<ReadOnlyMemory<byte>>>(provider.GetRequiredService<Serializer>().SerializeToArray(message))!;
        var copy = provider.GetRequiredService<DeepCopier>().Copy(message)!;

        Assert.Equal(state, back.State.ToArray());
        Assert.Equal("etag-2", back.ETag);
        Assert.Equal(state, copy.State.ToArray());
        state[0] ^= 0xFF; // the copy owns its bytes
        Assert.NotEqual(state[0], copy.State.Span[0]);
    }
}
