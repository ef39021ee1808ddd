namespace Checkpointing.Core;

/// <summary>
/// iopath's <c>PathManager</c> for checkpoint loading: handlers registered by prefix; the longest
/// matching prefix wins; a path no handler claims is returned unchanged (a local path, or one a
/// checkpointer backend understands, like <c>ckpt://</c>).
/// </summary>
public sealed class PathManager
{
    private readonly Dictionary<string, IPathHandler> _handlers = new(StringComparer.Ordinal);

    /// <summary>A manager that downloads <c>http://</c> and <c>https://</c> URLs into <paramref name="cacheDir"/> (default: <see cref="HttpPathHandler.DefaultCacheDir"/>).</summary>
    public static PathManager CreateDefault(string? cacheDir = null)
    {
        var manager = new PathManager();
        var http = new HttpPathHandler(cacheDir ?? HttpPathHandler.DefaultCacheDir);
        manager.Register("http://", http);
        manager.Register("https://", http);
        return manager;
    }

    /// <summary>Routes paths starting with <paramref name="prefix"/> (e.g. <c>"detectron2_test://"</c>) to <paramref name="handler"/>, replacing an earlier one.</summary>
    public PathManager Register(string prefix, IPathHandler handler)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        ArgumentNullException.ThrowIfNull(handler);
        lock (_handlers) _handlers[prefix] = handler;
        return this;
    }

    /// <summary>
    /// The local path of <paramref name="path"/>: what the handler of the longest matching prefix makes of it, or
    /// <paramref name="path"/> unchanged when no handler's prefix matches.
    /// </summary>
    public Task<string> GetLocalPathAsync(string path, CancellationToken cancellationToken = default)
    {
        (string Prefix, IPathHandler Handler)? best = null;
        lock (_handlers)
        {
            foreach (var (prefix, handler) in _handlers)
            {
                if (path.StartsWith(prefix, StringComparison.Ordinal) && prefix.Length > (best?.Prefix.Length ?? 0)) best = (prefix, handler);
            }
        }
        return best is { Handler: var chosen } ? chosen.GetLocalPathAsync(path, cancellationToken) : Task.FromResult(path);
    }
}
