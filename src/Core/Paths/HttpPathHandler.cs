using System.Security.Cryptography;
using System.Text;

namespace Checkpointing.Core;

/// <summary>
/// Downloads <c>http(s)://</c> checkpoints once into a cache folder, as iopath's URL handler does:
/// <c>CACHE/&lt;hash of the URL&gt;/&lt;file name&gt;</c>, so the file keeps its extension (which
/// decides how it is read). A download lands under a temporary name and is renamed when complete.
/// </summary>
public sealed class HttpPathHandler(string cacheDir, HttpClient? client = null) : IPathHandler
{
    private static readonly HttpClient SharedClient = new();

    /// <summary><c>$CKPT_CACHE</c>, else <c>~/.cache/checkpointing</c>.</summary>
    public static string DefaultCacheDir =>
        Environment.GetEnvironmentVariable("CKPT_CACHE") is { Length: > 0 } dir
            ? dir
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "checkpointing");

    /// <summary>The folder downloads are cached in, as a full path.</summary>
    public string CacheDir { get; } = Path.GetFullPath(cacheDir);

    /// <summary>
    /// The cached copy of the URL <paramref name="path"/>, downloaded first when it is not in the cache. A cached file is used
    /// as it is: the URL is not fetched again, so a changed file at the same URL needs the cache entry deleted.
    /// </summary>
    /// <exception cref="ArgumentException">the URL does not end in a file name</exception>
    /// <exception cref="FileNotFoundException">the server answered with an error status</exception>
    public async Task<string> GetLocalPathAsync(string path, CancellationToken cancellationToken)
    {
        var url = new Uri(path, UriKind.Absolute);
        var fileName = Uri.UnescapeDataString(url.Segments[^1]);
        if (fileName is "" or "/" or "." or ".." || fileName.IndexOfAny(['/', '\\']) >= 0 || fileName.StartsWith('.'))
            throw new ArgumentException($"URL '{path}' does not end in a file name.", nameof(path));
        var folder = Path.Combine(CacheDir, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(url.AbsoluteUri)))[..16]);
        var local = Path.Combine(folder, fileName);
        if (File.Exists(local)) return local;

        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".{fileName}.download-{Guid.NewGuid():N}");
        try
        {
            using (var response = await (client ?? SharedClient).GetAsync(url, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false))
            {
                if (!response.IsSuccessStatusCode)
                    throw new FileNotFoundException($"Downloading {path} failed: HTTP {(int)response.StatusCode} {response.ReasonPhrase}.", path);
                await using var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
                await response.Content.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }
            File.Move(temp, local, overwrite: true);
            return local;
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
