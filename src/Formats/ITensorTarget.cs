namespace Checkpointing.Formats;

/// <summary>Memory that a reader fills with one tensor's bytes, straight from the source stream.</summary>
public interface ITensorTarget
{
    /// <summary>Reads exactly the tensor's byte length from <paramref name="source"/>.</summary>
    void Fill(Stream source);

    /// <summary>
    /// Fills the tensor through positional reads into its own memory (or, where that memory is not
    /// host-addressable, through a bounded staging buffer): <paramref name="read"/> fills a destination
    /// completely with the tensor's bytes starting at the given offset within the tensor.
    /// </summary>
    Task FillAsync(TensorRangeReader read, CancellationToken cancellationToken);
}
