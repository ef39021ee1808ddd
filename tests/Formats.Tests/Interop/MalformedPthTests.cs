using Checkpointing.TestSupport;
using Checkpointing.Formats.Interop.Pickle;
using Checkpointing.Formats.Interop.Torch;

namespace Checkpointing.Formats.Tests.Interop;

/// <summary>Damaged or inconsistent .pth files: each fails with its own check, never with a crash or a wrong tensor.</summary>
public sealed class MalformedPthTests
{
    [Fact]
    public void A_well_formed_handmade_file_reads()
    {
        var tensor = Assert.IsType<HostTensor>(Read(Archive(TensorPickle(numel: 4, offset: 1, size: 3), storageBytes: 16)));

        Assert.Equal([3L], tensor.Shape);
        Assert.Equal(Enumerable.Range(4, 12).Select(i => (byte)i), tensor.Data);
    }

    [Fact]
    public void Truncated_file_fails_the_zip_check()
    {
        var whole = Archive(TensorPickle(numel: 4, offset: 0, size: 4), storageBytes: 16);

        var error = Assert.Throws<CheckpointFormatException>(() => Read(whole[..(whole.Length / 2)]));

        Assert.Equal("zip", error.Check);
        Assert.Contains("truncated", error.Message);
    }

    [Fact]
    public void Zip_without_data_pkl_fails_the_data_pkl_check()
    {
        var error = Assert.Throws<CheckpointFormatException>(() => Read(HostileFiles.StoredZip([("ckpt/version", "3\n"u8.ToArray())])));

        Assert.Equal("data.pkl", error.Check);
    }

    [Fact]
    public void Storage_record_shorter_than_its_elements_fails_the_storage_check()
    {
        var error = Assert.Throws<CheckpointFormatException>(() => Read(Archive(TensorPickle(numel: 4, offset: 0, size: 4), storageBytes: 12)));

        Assert.Equal("storage", error.Check);
        Assert.Contains("holds 12 bytes, but 4 elements of F32 need 16", error.Message);
    }

    [Fact]
    public void Missing_storage_record_fails_the_storage_check()
    {
        var error = Assert.Throws<CheckpointFormatException>(() => Read(HostileFiles.StoredZip([("ckpt/data.pkl", TensorPickle(numel: 4, offset: 0, size: 4))])));

        Assert.Equal("storage", error.Check);
        Assert.Contains("data/0 is missing", error.Message);
    }

    [Theory]
    [InlineData(2, 3, 1)] // elements 2..4 of a 4-element storage
    [InlineData(0, 3, 2)] // elements 0, 2, 4
    [InlineData(5, 0, 1)] // an empty view cannot start past the end either
    public void View_outside_its_storage_fails_the_tensor_view_check(long offset, long size, long stride)
    {
        var error = Assert.Throws<CheckpointFormatException>(() => Read(Archive(TensorPickle(numel: 4, offset, size, stride), storageBytes: 16)));

        Assert.Equal("tensor view", error.Check);
    }

    [Fact]
    public void A_file_that_is_no_zip_fails_the_zip_check()
    {
        var error = Assert.Throws<CheckpointFormatException>(() => Read("not a checkpoint"u8.ToArray()));

        Assert.Equal("zip", error.Check);
    }

    private static object? Read(byte[] file) => PthReader.Read(new MemoryStream(file), "handmade.pth");

    /// <summary>data.pkl = {"t": _rebuild_tensor_v2(FloatStorage "0" of <paramref name="numel"/>, offset, (size,), (stride,), False, OrderedDict())}["t"].</summary>
    private static byte[] TensorPickle(long numel, long offset, long size, long stride = 1)
    {
        var pickle = new PickleWriter();
        pickle.Global("torch._utils", "_rebuild_tensor_v2");
        pickle.Mark();
        pickle.Mark();
        pickle.String("storage");
        pickle.Global("torch", "FloatStorage");
        pickle.String("0");
        pickle.String("cpu");
        pickle.Long(numel);
        pickle.TupleFromMark();
        pickle.PersistentId();
        pickle.Long(offset);
        pickle.Mark();
        pickle.Long(size);
        pickle.TupleFromMark();
        pickle.Mark();
        pickle.Long(stride);
        pickle.TupleFromMark();
        pickle.Bool(false);
        pickle.Global("collections", "OrderedDict");
        pickle.EmptyTuple();
        pickle.Reduce();
        pickle.TupleFromMark();
        pickle.Reduce();
        return pickle.Finish();
    }

    private static byte[] Archive(byte[] pickle, int storageBytes) =>
        HostileFiles.StoredZip([("ckpt/data.pkl", pickle), ("ckpt/data/0", Enumerable.Range(0, storageBytes).Select(i => (byte)i).ToArray()), ("ckpt/version", "3\n"u8.ToArray())]);
}
