namespace Checkpointing.Formats;

/// <summary>Sizes and names of <see cref="TensorDType"/> values.</summary>
public static class TensorDTypes
{
    /// <summary>Bytes per element: 8, 4, 2 or 1.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dtype"/> is not a defined <see cref="TensorDType"/>.</exception>
    public static int ElementSize(this TensorDType dtype) => dtype switch
    {
        TensorDType.F64 or TensorDType.I64 or TensorDType.U64 => 8,
        TensorDType.F32 or TensorDType.I32 or TensorDType.U32 => 4,
        TensorDType.F16 or TensorDType.BF16 or TensorDType.I16 or TensorDType.U16 => 2,
        TensorDType.I8 or TensorDType.U8 or TensorDType.BOOL or TensorDType.F8_E4M3 or TensorDType.F8_E5M2 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    /// <summary>The safetensors name of <paramref name="dtype"/>, e.g. <c>F32</c>, as the manifest and safetensors headers write it.</summary>
    public static string Name(this TensorDType dtype) => dtype.ToString();

    /// <summary>The supported names, space-separated, for error messages.</summary>
    public static string SupportedNames => string.Join(' ', Enum.GetNames<TensorDType>());

    /// <summary>
    /// Parses a safetensors dtype name. Only the exact, case-sensitive names are accepted, not numbers or other
    /// casings. Returns false (and <paramref name="dtype"/> set to its default) for null or an unknown name.
    /// </summary>
    public static bool TryParse(string? name, out TensorDType dtype)
    {
        // Enum.TryParse would also accept numbers and other casings; safetensors names are exact.
        foreach (var candidate in Enum.GetValues<TensorDType>())
        {
            if (string.Equals(candidate.ToString(), name, StringComparison.Ordinal))
            {
                dtype = candidate;
                return true;
            }
        }
        dtype = default;
        return false;
    }

    /// <summary>numel × element size, refusing negative dimensions and overflow.</summary>
    public static long ByteLength(TensorDType dtype, IReadOnlyList<long> shape)
    {
        long count = 1;
        foreach (var dim in shape)
        {
            if (dim < 0) throw new FormatException($"negative dimension {dim} in shape [{string.Join(", ", shape)}]");
            count = checked(count * dim);
        }
        return checked(count * dtype.ElementSize());
    }
}
