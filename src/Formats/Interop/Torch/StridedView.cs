using Checkpointing.Formats.Interop.Pickle;

namespace Checkpointing.Formats.Interop.Torch;

/// <summary>Copies a strided view (<c>as_strided(size, stride, offset)</c>) of a storage into a C-ordered tensor.</summary>
internal static class StridedView
{
    /// <summary>
    /// Materializes the view; sizes, strides and offset are in elements. The caller has checked
    /// that the view lies inside <paramref name="storage"/> (see <see cref="LastElement"/>).
    /// A view that is the whole storage in order shares the storage's array instead of copying it;
    /// any copy is charged to <paramref name="meter"/> before it is allocated, so a view that repeats
    /// elements (stride 0) cannot grow past the budget.
    /// </summary>
    public static HostTensor Materialize(byte[] storage, TensorDType dtype, long offset, long[] size, long[] stride, BudgetMeter meter, string what)
    {
        var elementSize = dtype.ElementSize();
        var bytes = ByteLength(size, elementSize, what);
        if (bytes == 0) return new HostTensor(dtype, size, []);
        var contiguous = IsContiguous(size, stride);
        if (contiguous && offset == 0 && bytes == storage.LongLength) return new HostTensor(dtype, size, storage);
        meter.ChargeBytes(bytes, what);
        if (bytes > Array.MaxLength) throw new PickleDataException($"{what} needs {bytes} bytes; a host tensor holds at most {Array.MaxLength}", "tensor view");
        if (contiguous) return new HostTensor(dtype, size, storage.AsSpan(checked((int)(offset * elementSize)), (int)bytes).ToArray());
        var result = new HostTensor(dtype, size, new byte[bytes]);
        // Walk the output in row-major order; the innermost dimension is one block copy when its stride is 1.
        var rank = size.Length;
        var innerRun = stride[rank - 1] == 1 ? size[rank - 1] : 1;
        var outerDims = innerRun > 1 ? rank - 1 : rank;
        var index = new long[rank];
        var runBytes = checked((int)(innerRun * elementSize));
        for (long written = 0; written < result.Data.LongLength; written += runBytes)
        {
            long source = offset;
            for (var d = 0; d < outerDims; d++) source += index[d] * stride[d];
            Buffer.BlockCopy(storage, checked((int)(source * elementSize)), result.Data, checked((int)written), runBytes);
            for (var d = outerDims - 1; d >= 0; d--)
            {
                if (++index[d] < size[d]) break;
                index[d] = 0;
            }
        }
        return result;
    }

    /// <summary>The view's size in bytes, computed with checked arithmetic: an overflow is a format error, not a crash.</summary>
    public static long ByteLength(long[] size, int elementSize, string what)
    {
        if (size.Contains(0)) return 0;
        try
        {
            return size.Aggregate((long)elementSize, (a, b) => checked(a * b));
        }
        catch (OverflowException)
        {
            throw new PickleDataException($"{what} of size [{string.Join(", ", size)}] has more elements than a 64-bit count holds", "tensor view");
        }
    }

    /// <summary>Index of the last element the view touches, or -1 for an empty view; null on overflow.</summary>
    public static long? LastElement(long offset, long[] size, long[] stride)
    {
        try
        {
            if (size.Any(s => s == 0)) return -1;
            var last = offset;
            for (var d = 0; d < size.Length; d++) last = checked(last + (size[d] - 1) * stride[d]);
            return last;
        }
        catch (OverflowException)
        {
            return null;
        }
    }

    /// <summary>Row-major contiguous; dimensions of size 1 may carry any stride.</summary>
    private static bool IsContiguous(long[] size, long[] stride)
    {
        long expected = 1;
        for (var d = size.Length - 1; d >= 0; d--)
        {
            if (size[d] == 0) return true;
            if (size[d] != 1 && stride[d] != expected) return false;
            expected *= size[d];
        }
        return true;
    }
}
