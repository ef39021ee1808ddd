namespace Checkpointing.Formats;

/// <summary>Fills <paramref name="destination"/> with a tensor's bytes from <paramref name="offset"/> (within the tensor) on.</summary>
public delegate Task TensorRangeReader(Memory<byte> destination, long offset, CancellationToken cancellationToken);

/// <summary>Creates the in-memory tensor for one index entry: the value placed in the state tree and where its bytes go.</summary>
public delegate (object Value, ITensorTarget Target) TensorAllocator(string key, TensorDType dtype, long[] shape);

/// <summary>A tensor held in a managed byte array: for tools and formats that do not load libtorch.</summary>
public sealed class HostTensor(TensorDType dtype, long[] shape, byte[] data) : ITensorSource, ITensorTarget
{
    public TensorDType DType { get; } = dtype;
    public long[] Shape { get; } = shape;
    public byte[] Data { get; } = CheckLength(dtype, shape, data);

    public static HostTensor Allocate(TensorDType dtype, long[] shape)
    {
        var length = TensorDTypes.ByteLength(dtype, shape);
        if (length > Array.MaxLength) throw new NotSupportedException($"A host tensor holds at most {Array.MaxLength} bytes; this one needs {length}.");
        return new HostTensor(dtype, shape, new byte[length]);
    }

    public static (object Value, ITensorTarget Target) Allocator(string key, TensorDType dtype, long[] shape)
    {
        var tensor = Allocate(dtype, shape);
        return (tensor, tensor);
    }

    public void WriteTo(Stream destination) => destination.Write(Data);

    public void Fill(Stream source) => source.ReadExactly(Data);

    public Task FillAsync(TensorRangeReader read, CancellationToken cancellationToken) => read(Data, 0, cancellationToken);

    public override string ToString() => $"{DType}[{string.Join(", ", Shape)}]";

    private static byte[] CheckLength(TensorDType dtype, long[] shape, byte[] data)
    {
        var expected = TensorDTypes.ByteLength(dtype, shape);
        if (data.LongLength != expected)
        {
            throw new ArgumentException($"{dtype}[{string.Join(", ", shape)}] needs {expected} bytes, got {data.LongLength}.", nameof(data));
        }
        return data;
    }
}
