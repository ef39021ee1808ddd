namespace Checkpointing.Formats;

/// <summary>Fills <paramref name="destination"/> with a tensor's bytes from <paramref name="offset"/> (within the tensor) on.</summary>
public delegate Task TensorRangeReader(Memory<byte> destination, long offset, CancellationToken cancellationToken);

/// <summary>Creates the in-memory tensor for one index entry: the value placed in the state tree and where its bytes go.</summary>
public delegate (object Value, ITensorTarget Target) TensorAllocator(string key, TensorDType dtype, long[] shape);

/// <summary>A tensor held in a managed byte array: for tools and formats that do not load libtorch.</summary>
public sealed class HostTensor(TensorDType dtype, long[] shape, byte[] data) : ITensorSource, ITensorTarget
{
    /// <inheritdoc/>
    public TensorDType DType { get; } = dtype;

    /// <inheritdoc/>
    public long[] Shape { get; } = shape;

    /// <summary>
    /// The elements, little-endian and row-major, exactly <c>ByteLength(DType, Shape)</c> bytes: construction throws
    /// <see cref="ArgumentException"/> for any other length. Not copied: the tensor and its creator share the array.
    /// </summary>
    public byte[] Data { get; } = CheckLength(dtype, shape, data);

    /// <summary>A zero-filled tensor of <paramref name="dtype"/> and <paramref name="shape"/>.</summary>
    /// <exception cref="NotSupportedException">The tensor needs more bytes than a managed array holds (<see cref="Array.MaxLength"/>).</exception>
    /// <exception cref="FormatException"><paramref name="shape"/> has a negative dimension.</exception>
    /// <exception cref="OverflowException">The byte length does not fit in a <see cref="long"/>.</exception>
    public static HostTensor Allocate(TensorDType dtype, long[] shape)
    {
        var length = TensorDTypes.ByteLength(dtype, shape);
        if (length > Array.MaxLength) throw new NotSupportedException($"A host tensor holds at most {Array.MaxLength} bytes; this one needs {length}.");
        return new HostTensor(dtype, shape, new byte[length]);
    }

    /// <summary>
    /// A <see cref="TensorAllocator"/> that reads every tensor into a new <see cref="HostTensor"/> (the value and the
    /// target are the same object), for tools that inspect or convert checkpoints without libtorch. <paramref name="key"/> is unused.
    /// </summary>
    public static (object Value, ITensorTarget Target) Allocator(string key, TensorDType dtype, long[] shape)
    {
        var tensor = Allocate(dtype, shape);
        return (tensor, tensor);
    }

    /// <inheritdoc/>
    public void WriteTo(Stream destination) => destination.Write(Data);

    /// <inheritdoc/>
    public void Fill(Stream source) => source.ReadExactly(Data);

    /// <inheritdoc/>
    public Task FillAsync(TensorRangeReader read, CancellationToken cancellationToken) => read(Data, 0, cancellationToken);

    /// <summary>The dtype and shape, e.g. <c>F32[64, 16]</c>; never the data.</summary>
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
