namespace Checkpointing.Core;

/// <summary>Turns paths under one or more prefixes (<c>https://</c>, <c>my_scheme://</c>) into local files or folders.</summary>
public interface IPathHandler
{
    /// <summary>The local file or folder that <paramref name="path"/> names, fetching it first if needed.</summary>
    Task<string> GetLocalPathAsync(string path, CancellationToken cancellationToken);
}
