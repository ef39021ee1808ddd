using System.Collections.Concurrent;
using System.Web;
using Azure.Core;
using Azure.Core.Pipeline;

namespace Checkpointing.Storage.Tests;

/// <summary>One request as it went to the service.</summary>
/// <param name="Comp">The <c>comp</c> query parameter ("block", "blocklist", ...), null for a plain blob request such as Put Blob.</param>
/// <param name="HasContentMd5">Whether it carried a <c>Content-MD5</c> header.</param>
/// <param name="HasContentCrc64">Whether it carried an <c>x-ms-content-crc64</c> header.</param>
/// <param name="HasStructuredBody">Whether its body was a structured message (<c>x-ms-structured-body</c>), the SDK's way of sending a CRC-64 with the content.</param>
public sealed record LoggedRequest(string Method, string Path, string? Comp, bool HasContentMd5, bool HasContentCrc64, bool HasStructuredBody);

/// <summary>A pipeline policy that records every request the client sends, retries included (add it per retry).</summary>
public sealed class RequestLog : HttpPipelineSynchronousPolicy
{
    private readonly ConcurrentQueue<LoggedRequest> _requests = new();

    public override void OnSendingRequest(HttpMessage message)
    {
        var uri = message.Request.Uri.ToUri();
        _requests.Enqueue(new LoggedRequest(
            message.Request.Method.Method,
            uri.AbsolutePath,
            HttpUtility.ParseQueryString(uri.Query)["comp"],
            message.Request.Headers.Contains("Content-MD5"),
            message.Request.Headers.Contains("x-ms-content-crc64"),
            message.Request.Headers.Contains("x-ms-structured-body")));
    }

    /// <summary>The requests sent so far for the blob <paramref name="key"/>, in order.</summary>
    public List<LoggedRequest> To(string key) => _requests.Where(r => r.Path.EndsWith("/" + key, StringComparison.Ordinal)).ToList();
}
