using Checkpointing.Abstractions;
using Checkpointing.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.Core;

/// <summary>Maps TorchSharp tensors to the byte-level format: dtypes, streaming out and filling in.</summary>
public static class TorchTensors
{
    /// <summary>TorchSharp's <c>Tensor.bytes</c> is a Span, so at most 2 GiB can be viewed at once; larger tensors go in chunks.</summary>
    private const long MaxChunkBytes = 1L << 30;

    /// <summary>
    /// The part of <paramref name="global"/> that <paramref name="layout"/> holds, as a view of it (writes go through): a box
    /// narrows every dimension, a flat range narrows the flattened tensor (which must then be contiguous). How a rank cuts
    /// its slices out of a global initialization, or a test compares a slice with the whole.
    /// </summary>
    /// <exception cref="ArgumentException">a tensor whose shape is not the layout's global shape</exception>
    public static Tensor SliceOf(Tensor global, TensorLayout layout)
    {
        if (!global.shape.SequenceEqual(layout.GlobalShape))
            throw new ArgumentException($"The tensor is [{string.Join(", ", global.shape)}]; the layout is {layout}.", nameof(global));
        if (layout.FlatOffset is { } flat) return global.view(-1).narrow(0, flat, layout.LocalShape[0]);
        var slice = global;
        for (var d = 0; d < layout.LocalShape.Length; d++) slice = slice.narrow(d, layout.Offsets![d], layout.LocalShape[d]);
        return slice;
    }

    /// <summary>The stored dtype of a TorchSharp element type.</summary>
    /// <exception cref="NotSupportedException">a type checkpoints cannot store (complex numbers, for instance)</exception>
    public static TensorDType ToDType(ScalarType type) => type switch
    {
        ScalarType.Float64 => TensorDType.F64,
        ScalarType.Float32 => TensorDType.F32,
        ScalarType.Float16 => TensorDType.F16,
        ScalarType.BFloat16 => TensorDType.BF16,
        ScalarType.Int64 => TensorDType.I64,
        ScalarType.Int32 => TensorDType.I32,
        ScalarType.Int16 => TensorDType.I16,
        ScalarType.Int8 => TensorDType.I8,
        ScalarType.Byte => TensorDType.U8,
        ScalarType.Bool => TensorDType.BOOL,
        _ => throw new NotSupportedException($"Tensors of type {type} cannot be stored in a checkpoint (supported: {TensorDTypes.SupportedNames})."),
    };

    /// <summary>The TorchSharp element type of a stored dtype; see <see cref="ScalarTypeOrNull"/> for one that does not throw.</summary>
    /// <param name="dtype">The stored dtype.</param>
    /// <param name="key">The tensor's key, named in the exception's message; null names none.</param>
    /// <exception cref="NotSupportedException">TorchSharp has no such type (unsigned 16, 32 or 64-bit integers, float8): such tensors can only be read as bytes</exception>
    public static ScalarType ToScalarType(TensorDType dtype, string? key = null) =>
        ScalarTypeOrNull(dtype)
        // TorchSharp 0.107 has no unsigned 16/32/64-bit or float8 tensors: such files stay readable as bytes (inspect, convert).
        ?? throw new NotSupportedException($"{(key is null ? "" : $"tensor '{key}': ")}{dtype} tensors have no TorchSharp type; read them as bytes (ckpt inspect / ckpt convert to .safetensors) instead of loading them into a model.");

    /// <summary>The TorchSharp type of a stored dtype, or null when TorchSharp has none.</summary>
    public static ScalarType? ScalarTypeOrNull(TensorDType dtype) => dtype switch
    {
        TensorDType.F64 => ScalarType.Float64,
        TensorDType.F32 => ScalarType.Float32,
        TensorDType.F16 => ScalarType.Float16,
        TensorDType.BF16 => ScalarType.BFloat16,
        TensorDType.I64 => ScalarType.Int64,
        TensorDType.I32 => ScalarType.Int32,
        TensorDType.I16 => ScalarType.Int16,
        TensorDType.I8 => ScalarType.Int8,
        TensorDType.U8 => ScalarType.Byte,
        TensorDType.BOOL => ScalarType.Bool,
        _ => null,
    };

    /// <summary>The state-tree adapter for writers: TorchSharp tensors and byte-level tensors (<see cref="HostTensor"/>) are tensors, anything else is not.</summary>
    public static ITensorSource? AsSource(object value) => value switch
    {
        Tensor t => new TorchTensorSource(t),
        ITensorSource source => source,
        _ => null,
    };

    /// <summary>A CPU TorchSharp tensor holding a copy of <paramref name="host"/>'s bytes.</summary>
    public static Tensor FromHost(HostTensor host)
    {
        var (value, target) = Allocate("", host.DType, host.Shape);
        using (var bytes = new MemoryStream(host.Data, writable: false)) target.Fill(bytes);
        return (Tensor)value;
    }

    /// <summary>A byte-level copy of <paramref name="tensor"/> (for code that works on <see cref="HostTensor"/>s, like Caffe2 renaming).</summary>
    public static HostTensor ToHost(Tensor tensor)
    {
        var host = HostTensor.Allocate(ToDType(tensor.dtype), tensor.shape);
        using var bytes = new MemoryStream(host.Data);
        new TorchTensorSource(tensor).WriteTo(bytes);
        return host;
    }

    /// <summary>Allocates an empty CPU tensor for a stored one and reads its bytes straight into its memory.</summary>
    public static (object Value, ITensorTarget Target) Allocate(string key, TensorDType dtype, long[] shape)
    {
        var tensor = empty(shape, ToScalarType(dtype, key), CPU);
        HugePages.Advise(tensor);
        return (tensor, new TorchTensorTarget(tensor));
    }

    /// <summary>Visits a contiguous CPU tensor's memory in spans of at most <see cref="MaxChunkBytes"/>.</summary>
    internal static void ForEachChunk(Tensor contiguousCpu, SpanAction action)
    {
        foreach (var (_, chunk) in Chunks(contiguousCpu)) action(chunk.bytes);
    }

    /// <summary>
    /// A contiguous CPU tensor as views of at most <see cref="MaxChunkBytes"/> with their byte offsets
    /// (the tensor itself when it is small enough); each view is disposed when the walk moves on.
    /// </summary>
    private static IEnumerable<(long Offset, Tensor Chunk)> Chunks(Tensor contiguousCpu)
    {
        if (contiguousCpu.numel() * contiguousCpu.ElementSize <= MaxChunkBytes)
        {
            yield return (0, contiguousCpu);
            yield break;
        }
        using var flat = contiguousCpu.view(-1);
        var elementsPerChunk = MaxChunkBytes / contiguousCpu.ElementSize;
        for (long start = 0; start < flat.numel(); start += elementsPerChunk)
        {
            using var chunk = flat.narrow(0, start, Math.Min(elementsPerChunk, flat.numel() - start));
            yield return (start * contiguousCpu.ElementSize, chunk);
        }
    }

    internal delegate void SpanAction(Span<byte> bytes);

    internal static bool IsHostContiguous(Tensor tensor) => tensor.device_type == DeviceType.CPU && tensor.is_contiguous();

    /// <summary>A host tensor shaped like <paramref name="like"/> to stage its bytes; pinned when <paramref name="like"/> is on CUDA, so the device copy is a DMA.</summary>
    internal static Tensor HostStaging(Tensor like)
    {
        var host = empty(like.shape, like.dtype, CPU);
        if (like.device_type != DeviceType.CUDA)
        {
            HugePages.Advise(host);
            return host;
        }
        using (host) return host.pin_memory();
    }

    /// <summary>
    /// Fills a contiguous CPU tensor through positional reads straight into its memory, in chunks of at
    /// most <see cref="MaxChunkBytes"/>. The memory is native and does not move, so it can be handed
    /// across awaits; the tensor must stay alive until this returns.
    /// </summary>
    internal static async Task ReadIntoAsync(Tensor contiguousCpu, TensorRangeReader read, CancellationToken cancellationToken)
    {
        foreach (var (offset, chunk) in Chunks(contiguousCpu))
        {
            await read(NativeMemory.Over(chunk.bytes), offset, cancellationToken).ConfigureAwait(false);
        }
    }
}

/// <summary>A <see cref="Memory{T}"/> over native memory that never moves (a tensor's storage), so it may cross awaits.</summary>
internal sealed unsafe class NativeMemory : System.Buffers.MemoryManager<byte>
{
    private readonly byte* _pointer;
    private readonly int _length;

    private NativeMemory(byte* pointer, int length)
    {
        _pointer = pointer;
        _length = length;
    }

    /// <summary>The memory behind <paramref name="span"/>, which must be native memory that outlives every use of the result.</summary>
    public static Memory<byte> Over(Span<byte> span)
    {
        fixed (byte* pointer = span) return new NativeMemory(pointer, span.Length).Memory;
    }

    public override Span<byte> GetSpan() => new(_pointer, _length);

    public override System.Buffers.MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

    public override void Unpin() { }

    protected override void Dispose(bool disposing) { }
}

/// <summary>Streams a tensor's bytes from tensor memory; CUDA or non-contiguous tensors are copied to host one tensor at a time.</summary>
internal sealed class TorchTensorSource(Tensor tensor) : ITensorSource
{
    public TensorDType DType { get; } = TorchTensors.ToDType(tensor.dtype);
    public long[] Shape { get; } = tensor.shape;

    public void WriteTo(Stream destination)
    {
        var host = tensor.device_type == DeviceType.CPU && tensor.is_contiguous() ? tensor : tensor.detach().cpu().contiguous();
        try
        {
            TorchTensors.ForEachChunk(host, span => destination.Write(span));
        }
        finally
        {
            if (!ReferenceEquals(host, tensor)) host.Dispose();
        }
    }
}

/// <summary>
/// Fills a tensor with stored bytes. A contiguous CPU tensor is filled in its own memory; any other
/// (CUDA, non-contiguous) through a host staging tensor — pinned when the destination is on CUDA —
/// that is then copied over, one tensor at a time.
/// </summary>
internal sealed class TorchTensorTarget(Tensor tensor) : ITensorTarget
{
    public void Fill(Stream source)
    {
        if (TorchTensors.IsHostContiguous(tensor))
        {
            TorchTensors.ForEachChunk(tensor, span => source.ReadExactly(span));
            return;
        }
        using var staging = TorchTensors.HostStaging(tensor);
        TorchTensors.ForEachChunk(staging, span => source.ReadExactly(span));
        CopyOver(staging);
    }

    public async Task FillAsync(TensorRangeReader read, CancellationToken cancellationToken)
    {
        if (TorchTensors.IsHostContiguous(tensor))
        {
            await TorchTensors.ReadIntoAsync(tensor, read, cancellationToken).ConfigureAwait(false);
            return;
        }
        using var staging = TorchTensors.HostStaging(tensor);
        await TorchTensors.ReadIntoAsync(staging, read, cancellationToken).ConfigureAwait(false);
        CopyOver(staging);
    }

    private void CopyOver(Tensor staging)
    {
        using (no_grad()) tensor.copy_(staging);
    }
}
