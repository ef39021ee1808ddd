namespace Checkpointing.Abstractions;

/// <summary>
/// A store that can hand out short-lived, signed access to one object at a time, so that a process holding no
/// credential of its own (a training rank) can write or read exactly what it was granted and nothing else: not another
/// object of its run, and never another run's or tenant's.
/// </summary>
public interface IGrantingStore
{
    /// <summary>A URI that lets its holder create and write the object <paramref name="key"/> until <paramref name="expiresOn"/>.</summary>
    Task<Uri> GrantWriteAsync(string key, DateTimeOffset expiresOn, CancellationToken cancellationToken = default);

    /// <summary>A URI that lets its holder read the object <paramref name="key"/> until <paramref name="expiresOn"/>.</summary>
    Task<Uri> GrantReadAsync(string key, DateTimeOffset expiresOn, CancellationToken cancellationToken = default);
}
