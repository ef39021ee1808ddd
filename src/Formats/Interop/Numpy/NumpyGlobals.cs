using System.Buffers.Binary;
using Checkpointing.Formats.Interop.Pickle;
using Checkpointing.Formats.Interop.Torch;

namespace Checkpointing.Formats.Interop.Numpy;

/// <summary>
/// The numpy globals that array pickles name (numpy 1.x <c>numpy.core</c> and 2.x <c>numpy._core</c>):
/// arrays become <see cref="HostTensor"/>s, C-ordered and little-endian whatever their pickled layout.
/// </summary>
internal static class NumpyGlobals
{
    private const string NdarrayName = "numpy.ndarray";

    public static IEnumerable<PyGlobal> All { get; } = CreateAll();

    private static IEnumerable<PyGlobal> CreateAll()
    {
        var ndarray = new PyGlobal(NdarrayName, (_, _) => throw new PickleDataException("numpy.ndarray(...) is only supported through _reconstruct"));
        yield return ndarray;
        yield return new PyGlobal("numpy.dtype", (args, _) => NumpyDType.Create(args));
        foreach (var core in new[] { "numpy.core", "numpy._core" })
        {
            yield return new PyGlobal($"{core}.multiarray._reconstruct", Reconstruct);
            yield return new PyGlobal($"{core}.multiarray.scalar", Scalar);
            yield return new PyGlobal($"{core}.numeric._frombuffer", FromBuffer);
        }
    }

    /// <summary><c>_reconstruct(ndarray, (0,), b'b')</c>: an empty array that BUILD fills.</summary>
    private static object Reconstruct(object?[] args, BudgetMeter meter) =>
        args is [PyGlobal { Name: NdarrayName }, ..]
            ? new NumpyArray(meter)
            : throw new PickleDataException("numpy _reconstruct of anything but numpy.ndarray is not supported", "numpy array");

    /// <summary><c>_frombuffer(buffer, dtype, shape, order)</c>: protocol 5's form of a contiguous array.</summary>
    private static object FromBuffer(object?[] args, BudgetMeter meter) => args switch
    {
        [byte[] buffer, NumpyDType dtype, object?[] shape, string order] when order is "C" or "F" =>
            NumpyArray.ToTensor(dtype, NumpyArray.Shape(shape), fortranOrder: order == "F", buffer, meter),
        _ => throw new PickleDataException("numpy _frombuffer called with unsupported arguments", "numpy array"),
    };

    /// <summary><c>scalar(dtype, bytes)</c>: a numpy scalar, returned as the Python number it holds.</summary>
    private static object Scalar(object?[] args, BudgetMeter meter)
    {
        if (args is not [NumpyDType dtype, var raw] || NumpyArray.Bytes(raw, meter) is not { } bytes || bytes.Length != dtype.ItemSize)
            throw new PickleDataException("numpy scalar called with unsupported arguments", "numpy array");
        var le = dtype.ToLittleEndian(bytes, meter);
        return dtype.TensorType switch
        {
            TensorDType.F64 => BinaryPrimitives.ReadDoubleLittleEndian(le),
            TensorDType.F32 => (double)BinaryPrimitives.ReadSingleLittleEndian(le),
            TensorDType.F16 => (double)BinaryPrimitives.ReadHalfLittleEndian(le),
            TensorDType.I64 => BinaryPrimitives.ReadInt64LittleEndian(le),
            TensorDType.I32 => (long)BinaryPrimitives.ReadInt32LittleEndian(le),
            TensorDType.I16 => (long)BinaryPrimitives.ReadInt16LittleEndian(le),
            TensorDType.I8 => (long)(sbyte)le[0],
            TensorDType.U8 => (long)le[0],
            TensorDType.BOOL => le[0] != 0,
            var other => throw new PickleDataException($"numpy scalar of {other} is not supported", "numpy array"),
        };
    }
}

/// <summary>A numpy dtype from <c>numpy.dtype(code, align, copy)</c>; BUILD sets its byte order.</summary>
internal sealed class NumpyDType : IPickleBuildable
{
    private NumpyDType(string code, TensorDType tensorType)
    {
        Code = code;
        TensorType = tensorType;
    }

    public string Code { get; }
    public TensorDType TensorType { get; }
    public int ItemSize => TensorType.ElementSize();
    public bool BigEndian { get; private set; }

    public static NumpyDType Create(object?[] args)
    {
        if (args is not [string code, ..]) throw new PickleDataException("numpy.dtype called without a type code", "numpy array");
        TensorDType? type = code switch
        {
            "f8" => TensorDType.F64,
            "f4" => TensorDType.F32,
            "f2" => TensorDType.F16,
            "i8" => TensorDType.I64,
            "i4" => TensorDType.I32,
            "i2" => TensorDType.I16,
            "i1" => TensorDType.I8,
            "u1" => TensorDType.U8,
            "b1" => TensorDType.BOOL,
            _ => null,
        };
        return type is { } t
            ? new NumpyDType(code, t)
            : throw new PickleDataException($"numpy dtype '{code}' has no tensor equivalent (supported: f8 f4 f2 i8 i4 i2 i1 u1 b1)", "numpy array");
    }

    /// <summary>State (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata]).</summary>
    public void SetState(object? state)
    {
        if (state is not object?[] { Length: >= 5 } items || items[1] is not string order)
            throw new PickleDataException($"numpy dtype '{Code}' has an unsupported state", "numpy array");
        if (items[2] is not null || items[3] is not null || items[4] is not null)
            throw new PickleDataException($"structured or sub-array numpy dtypes ('{Code}') are not supported", "numpy array");
        BigEndian = order switch
        {
            ">" => true,
            "<" or "|" or "=" => false,
            _ => throw new PickleDataException($"numpy byte order '{order}' is unknown", "numpy array"),
        };
    }

    /// <summary>The bytes in little-endian order: a swapped copy for big-endian dtypes (the input may be shared).</summary>
    public byte[] ToLittleEndian(byte[] bytes, BudgetMeter meter)
    {
        if (!BigEndian || ItemSize == 1) return bytes;
        meter.ChargeBytes(bytes.LongLength, $"byte-swapping a numpy '{Code}' array");
        var swapped = bytes.ToArray();
        for (var i = 0; i < swapped.Length; i += ItemSize) swapped.AsSpan(i, ItemSize).Reverse();
        return swapped;
    }
}

/// <summary>An ndarray made by <c>_reconstruct</c> and filled by BUILD with (version, shape, dtype, is_fortran, data).</summary>
internal sealed class NumpyArray(BudgetMeter meter) : IPickleBuildable, IPickleValue
{
    private HostTensor? _tensor;

    public void SetState(object? state)
    {
        // numpy writes a version first; very old pickles have only the last four items.
        var items = state switch
        {
            object?[] { Length: 5 } five => five[1..],
            object?[] { Length: 4 } four => four,
            _ => throw new PickleDataException("numpy array state is not (version, shape, dtype, is_fortran, data)", "numpy array"),
        };
        if (items is not [object?[] shape, NumpyDType dtype, bool fortran, var data])
            throw new PickleDataException("numpy array state is not (version, shape, dtype, is_fortran, data)", "numpy array");
        var bytes = Bytes(data, meter) ?? throw new PickleDataException($"numpy array of dtype '{dtype.Code}' carries no raw bytes (object arrays are not supported)", "numpy array");
        _tensor = ToTensor(dtype, Shape(shape), fortran, bytes, meter);
    }

    public object ToValue() => _tensor ?? throw new PickleDataException("numpy array was reconstructed but never filled (missing BUILD)", "numpy array");

    public static HostTensor ToTensor(NumpyDType dtype, long[] shape, bool fortranOrder, byte[] bytes, BudgetMeter meter)
    {
        long expected;
        try
        {
            expected = TensorDTypes.ByteLength(dtype.TensorType, shape);
        }
        catch (Exception e) when (e is FormatException or OverflowException)
        {
            throw new PickleDataException($"numpy array shape is invalid: {e.Message}", "numpy array");
        }
        if (bytes.LongLength != expected)
            throw new PickleDataException($"numpy array {dtype.Code}[{string.Join(", ", shape)}] needs {expected} bytes, the pickle holds {bytes.LongLength}", "numpy array");
        var littleEndian = dtype.ToLittleEndian(bytes, meter);
        if (!fortranOrder || shape.Length < 2) return new HostTensor(dtype.TensorType, shape, littleEndian);
        // Column-major data is the C-ordered tensor viewed with reversed strides.
        var strides = new long[shape.Length];
        long stride = 1;
        for (var i = 0; i < shape.Length; i++)
        {
            strides[i] = stride;
            stride *= shape[i];
        }
        return StridedView.Materialize(littleEndian, dtype.TensorType, 0, shape, strides, meter, "a Fortran-ordered numpy array");
    }

    public static long[] Shape(object?[] shape) =>
        shape.Select(d => d is long n and >= 0 ? n : throw new PickleDataException("numpy array shape holds a non-integer or negative dimension", "numpy array")).ToArray();

    /// <summary>Raw array bytes: bytes in Python 3 pickles, a latin-1 str in Python 2 ones.</summary>
    public static byte[]? Bytes(object? data, BudgetMeter meter)
    {
        switch (data)
        {
            case byte[] bytes: return bytes;
            case string latin1 when latin1.All(c => c <= '\u00ff'):
                meter.ChargeBytes(latin1.Length, "decoding numpy array bytes from a Python 2 string");
                return System.Text.Encoding.Latin1.GetBytes(latin1);
            default: return null;
        }
    }
}
