using System.IO.Hashing;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Checkpointing.Contracts;
using Checkpointing.Storage;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// An agent's side of the memory tier's data channel (docs/memory-tier.md): puts a snapshot's objects on a holder and
/// completes it, fetches a complete one with every object's length and CRC-64 checked, and frees one. Every call carries
/// the job's tenant token. Failures are <see cref="HolderException"/>s naming the holder and what it said.
/// </summary>
public sealed class HolderClient(HttpClient http, string tenantToken)
{
    /// <summary>The largest listing of a snapshot's objects read from a holder.</summary>
    private const int MaxListingBytes = 1 << 20;

    /// <summary>An <see cref="HttpClient"/> for holders: connections time out, transfers do not (gigabytes take what they take; callers cancel).</summary>
    public static HttpClient CreateHttp() => new(new SocketsHttpHandler
    {
        PooledConnectionLifetime = TimeSpan.FromMinutes(5), AutomaticDecompression = DecompressionMethods.None,
        ConnectTimeout = TimeSpan.FromSeconds(10), // a holder whose host is gone is given up on, and the next one tried
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    /// <summary>
    /// Puts every object of the snapshot on each of <paramref name="holders"/> (concurrently, each object's CRC-64 computed once),
    /// then completes it on each; returns once every holder keeps it whole. When a holder's put fails, what was put there is
    /// freed (best effort) and the failure is thrown.
    /// </summary>
    /// <param name="holders">Where the snapshot goes: the placement the run grain gave.</param>
    /// <param name="key">The snapshot.</param>
    /// <param name="objects">Its objects: name and bytes.</param>
    /// <param name="keep">The committed snapshot of this run and rank the holders must keep whatever else their bound drops; null: none.</param>
    /// <param name="cancellationToken">Cancels the transfers.</param>
    public async Task PutAsync(IReadOnlyList<HolderRef> holders, SnapshotKey key, IReadOnlyList<(string Name, ReadOnlyMemory<byte> Bytes)> objects, SnapshotKey? keep,
        CancellationToken cancellationToken)
    {
        var checksums = new ulong[objects.Count];
        Parallel.For(0, objects.Count, index => checksums[index] = Crc64.HashToUInt64(objects[index].Bytes.Span));
        await Task.WhenAll(holders.Select(holder => PutOnAsync(holder, key, objects, checksums, keep, cancellationToken))).ConfigureAwait(false);
    }

    private async Task PutOnAsync(HolderRef holder, SnapshotKey key, IReadOnlyList<(string Name, ReadOnlyMemory<byte> Bytes)> objects, ulong[] checksums, SnapshotKey? keep,
        CancellationToken cancellationToken)
    {
        try
        {
            await PutAllAsync(holder, key, objects, checksums, keep, cancellationToken).ConfigureAwait(false);
        }
        catch (HolderException)
        {
            try { await DeleteAsync(holder, key, CancellationToken.None).ConfigureAwait(false); }
            catch (Exception e) when (e is HolderException or HttpRequestException) { } // the holder's own bound frees it later
            throw;
        }
    }

    private async Task PutAllAsync(HolderRef holder, SnapshotKey key, IReadOnlyList<(string Name, ReadOnlyMemory<byte> Bytes)> objects, ulong[] checksums, SnapshotKey? keep,
        CancellationToken cancellationToken)
    {
        await Parallel.ForEachAsync(Enumerable.Range(0, objects.Count), Transfers(cancellationToken), async (index, token) =>
        {
            var (name, bytes) = objects[index];
            using var content = new ReadOnlyMemoryContent(bytes);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            using var request = Request(HttpMethod.Put, holder, $"{key.Path}/{name}", content);
            request.Headers.Add(HolderServer.ChecksumHeader, checksums[index].ToString("x16", System.Globalization.CultureInfo.InvariantCulture));
            using var response = await SendAsync(request, holder, $"put {name} of {key.Path}", token).ConfigureAwait(false);
        }).ConfigureAwait(false);
        var listing = new JsonObject { ["objects"] = new JsonObject(objects.Select(o => KeyValuePair.Create(o.Name, (JsonNode?)o.Bytes.Length))) };
        if (keep is not null && keep.Run == key.Run && keep.Rank == key.Rank) listing["keep"] = new JsonObject { ["epoch"] = keep.Epoch, ["iteration"] = keep.Iteration };
        using var complete = Request(HttpMethod.Post, holder, $"{key.Path}/complete", new StringContent(listing.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
        using var completed = await SendAsync(complete, holder, $"complete {key.Path}", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Fetches the complete snapshot from <paramref name="holder"/> into <paramref name="into"/> under <paramref name="folder"/>,
    /// each object's length and CRC-64 checked as it lands; returns the bytes fetched.
    /// </summary>
    public async Task<long> FetchAsync(HolderRef holder, SnapshotKey key, MemoryStore into, string folder, CancellationToken cancellationToken)
    {
        using var listingRequest = Request(HttpMethod.Get, holder, key.Path, null);
        using var listingResponse = await SendAsync(listingRequest, holder, $"list {key.Path}", cancellationToken).ConfigureAwait(false);
        JsonObject listing;
        try
        {
            var listingBytes = await ReadBoundedAsync(listingResponse, MaxListingBytes, holder, cancellationToken).ConfigureAwait(false);
            listing = JsonNode.Parse(listingBytes, documentOptions: new JsonDocumentOptions { MaxDepth = 4 })?["objects"] as JsonObject
                ?? throw new HolderException(holder, $"list {key.Path}", "the listing has no objects");
        }
        catch (Exception e) when (e is JsonException or IOException or HttpRequestException)
        {
            throw new HolderException(holder, $"list {key.Path}", $"the listing did not arrive whole: {e.Message}", e);
        }
        if (listing.Count > HolderServer.MaxObjects) throw new HolderException(holder, $"list {key.Path}", $"the listing names {listing.Count} objects, over {HolderServer.MaxObjects}");
        var objects = new List<(string Name, long Length)>();
        foreach (var (name, value) in listing)
        {
            if (value is not JsonValue number || !number.TryGetValue<long>(out var length) || length < 0 || length > Array.MaxLength)
                throw new HolderException(holder, $"list {key.Path}", $"object {name}'s size is not a byte count this process can hold");
            objects.Add((name, length));
        }
        await Parallel.ForEachAsync(objects, Transfers(cancellationToken), async (item, token) =>
        {
            var (name, length) = item;
            using var request = Request(HttpMethod.Get, holder, $"{key.Path}/{name}", null);
            using var response = await SendAsync(request, holder, $"get {name} of {key.Path}", token).ConfigureAwait(false);
            if (!ulong.TryParse(response.Headers.TryGetValues(HolderServer.ChecksumHeader, out var values) ? values.FirstOrDefault() : null,
                    System.Globalization.NumberStyles.AllowHexSpecifier, null, out var expected))
                throw new HolderException(holder, $"get {name}", $"no CRC-64 in {HolderServer.ChecksumHeader}");
            var bytes = GC.AllocateUninitializedArray<byte>((int)length);
            try
            {
                await using var body = await response.Content.ReadAsStreamAsync(token).ConfigureAwait(false);
                var read = await body.ReadAtLeastAsync(bytes, bytes.Length, throwOnEndOfStream: false, token).ConfigureAwait(false);
                if (read != bytes.Length || body.ReadByte() != -1) throw new HolderException(holder, $"get {name}", $"the object is not the {length} bytes listed");
            }
            catch (Exception e) when (e is IOException or HttpRequestException)
            {
                throw new HolderException(holder, $"get {name}", $"the transfer broke off: {e.Message}", e); // the holder went away mid-transfer
            }
            var actual = Crc64.HashToUInt64(bytes);
            if (actual != expected) throw new HolderException(holder, $"get {name}", $"CRC-64 {actual:x16} does not match {expected:x16}");
            into.Adopt($"{folder}/{name}", bytes);
        }).ConfigureAwait(false);
        return objects.Sum(o => o.Length);
    }

    /// <summary>Objects in flight at once: a snapshot's shards move over several connections, as loads read several ranges.</summary>
    private static ParallelOptions Transfers(CancellationToken cancellationToken) =>
        new() { MaxDegreeOfParallelism = Math.Max(2, Environment.ProcessorCount), CancellationToken = cancellationToken };

    /// <summary>Frees the snapshot on <paramref name="holder"/>; false when it did not hold it.</summary>
    public async Task<bool> DeleteAsync(HolderRef holder, SnapshotKey key, CancellationToken cancellationToken)
    {
        using var request = Request(HttpMethod.Delete, holder, key.Path, null);
        HttpResponseMessage response;
        try { response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false); }
        catch (HttpRequestException e) { throw new HolderException(holder, $"delete {key.Path}", e.Message, e); }
        using var answered = response;
        if (response.StatusCode == HttpStatusCode.NotFound) return false;
        await ThrowUnlessSuccessAsync(response, holder, $"delete {key.Path}", cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>What <paramref name="holder"/> keeps now.</summary>
    public async Task<HolderStats> StatsAsync(HolderRef holder, CancellationToken cancellationToken)
    {
        using var request = Request(HttpMethod.Get, holder, "v1/holder", null);
        using var response = await SendAsync(request, holder, "stats", cancellationToken).ConfigureAwait(false);
        var stats = JsonNode.Parse(await ReadBoundedAsync(response, MaxListingBytes, holder, cancellationToken).ConfigureAwait(false))!;
        return new HolderStats((long)stats["bytes_held"]!, (long)stats["max_bytes"]!, (int)stats["complete_snapshots"]!, (int)stats["incomplete_snapshots"]!);
    }

    private HttpRequestMessage Request(HttpMethod method, HolderRef holder, string path, HttpContent? content)
    {
        var request = new HttpRequestMessage(method, new Uri(new Uri(holder.Endpoint.TrimEnd('/') + "/"), path)) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", tenantToken);
        return request;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, HolderRef holder, string what, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new HolderException(holder, what, e.Message, e);
        }
        await ThrowUnlessSuccessAsync(response, holder, what, cancellationToken).ConfigureAwait(false);
        return response;
    }

    private static async Task ThrowUnlessSuccessAsync(HttpResponseMessage response, HolderRef holder, string what, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode) return;
        var detail = "";
        try
        {
            var body = await ReadBoundedAsync(response, 4096, holder, cancellationToken).ConfigureAwait(false);
            detail = JsonNode.Parse(body)?["detail"]?.GetValue<string>() ?? "";
        }
        catch (Exception e) when (e is JsonException or HolderException or InvalidOperationException or IOException or HttpRequestException) { } // the status says enough
        finally { response.Dispose(); }
        throw new HolderException(holder, what, $"{(int)response.StatusCode} {response.StatusCode}{(detail.Length > 0 ? $": {detail}" : "")}");
    }

    private static async Task<byte[]> ReadBoundedAsync(HttpResponseMessage response, int maxBytes, HolderRef holder, CancellationToken cancellationToken)
    {
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var buffer = new byte[maxBytes + 1];
        var read = await body.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (read > maxBytes) throw new HolderException(holder, "read", $"an answer over {maxBytes} bytes");
        return buffer[..read];
    }
}
