namespace Checkpointing.Formats.Interop;

/// <summary>
/// A string-keyed dictionary that is Python's <c>collections.OrderedDict</c> on the Python side:
/// the .pth reader returns one for every OrderedDict (torch state dicts are), and the .pth writer
/// writes one back as OrderedDict (any other dictionary becomes a plain dict).
/// </summary>
public sealed class PythonOrderedDict : OrderedDictionary<string, object?>
{
    /// <summary>An empty dictionary whose keys compare ordinally (case-sensitive), as Python's do.</summary>
    public PythonOrderedDict() : base(StringComparer.Ordinal) { }
}
