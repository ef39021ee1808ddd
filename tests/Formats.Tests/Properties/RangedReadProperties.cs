using Checkpointing.Storage;
using CsCheck;

namespace Checkpointing.Formats.Tests.Properties;

/// <summary>
/// The parallel ranged reader against the streaming one's promises, for any state dict, any piece size and any parallelism: the
/// tensors read back bit for bit, and a single changed byte anywhere in the shard is refused, never read silently.
/// </summary>
public sealed class RangedReadProperties
{
    private static readonly Gen<(GeneratedStateDict Dict, int PieceBytes, int Parallelism, int FlipAt)> Cases =
        Gen.Select(StateDictGen.StateDicts(Enum.GetValues<TensorDType>(), maxTensors: 40), Gen.Int[1, 4096], Gen.Int[1, 8], Gen.Int[-1, int.MaxValue]);

    [Fact]
    public void Any_shard_read_in_any_pieces_reads_back_bit_for_bit_and_any_changed_byte_is_refused()
    {
        Cases.Sample(c =>
        {
            var model = c.Dict.CreateModel();
            var buffer = new MemoryStream();
            var hashing = new ChecksummingWriteStream(buffer);
            SafetensorsShardWriter.Write(hashing, model.Select(p => new NamedTensor(p.Key, (HostTensor)p.Value!)).ToList());
            var file = buffer.ToArray();
            var flip = c.FlipAt < 0 ? -1 : c.FlipAt % file.Length; // -1: the shard as written
            if (flip >= 0) file[flip] ^= 0x5A;
            var store = new MemoryStore();
            store.WriteAsync("shard.safetensors", (stream, ct) => stream.WriteAsync(file, ct).AsTask()).GetAwaiter().GetResult();

            var read = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
            try
            {
                RangedShardReader.ReadAsync(store, "shard.safetensors", file.Length, hashing.Checksum, e =>
                {
                    var tensor = HostTensor.Allocate(e.DType, e.Shape);
                    lock (read) read.Add(e.Key, tensor);
                    return tensor;
                }, progress: null, c.Parallelism, CancellationToken.None, c.PieceBytes).GetAwaiter().GetResult();
            }
            catch (CheckpointFormatException) when (flip >= 0)
            {
                return; // refused, as it must be
            }
            Assert.True(flip < 0, $"byte {flip} of {file.Length} was changed and the read did not notice");
            RoundTripProperties.AssertSame(model, read);
        }, iter: 150);
    }
}
