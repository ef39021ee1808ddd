using System.IO.Hashing;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// A memory-tier holder (docs/memory-tier.md): keeps ranks' snapshots in this process's memory and serves them to the
/// job's agents over HTTP, apart from the run grain (bytes never pass through grain messages). Every request carries
/// <c>Authorization: Bearer</c> with exactly the job's tenant token (401 otherwise) and names that tenant's run (403
/// otherwise). Objects stream in with their CRC-64 and are checked as they land; a snapshot is served only once complete.
/// </summary>
public sealed class HolderServer : IAsyncDisposable
{
    /// <summary>The header carrying an object's CRC-64 (16 hex digits) on PUT and GET.</summary>
    public const string ChecksumHeader = "x-ckpt-crc64";
    /// <summary>The most objects a snapshot's completion may name, and the largest completion body read.</summary>
    public const int MaxObjects = 4096;
    private const int MaxCompletionBytes = 1 << 20;
    private const int ChunkBytes = 16 << 20;
    private readonly WebApplication _app;
    private readonly SnapshotHolder _holder;
    private readonly byte[] _token;
    private readonly string _tenant;

    private HolderServer(WebApplication app, SnapshotHolder holder, string token, string tenant, string host)
    {
        _app = app;
        _holder = holder;
        _token = Encoding.UTF8.GetBytes(token);
        _tenant = tenant;
        Host = host;
    }

    /// <summary>Where agents reach it, <c>http://address:port</c>.</summary>
    public string Endpoint { get; private set; } = "";
    /// <summary>The host it announces.</summary>
    public string Host { get; }
    /// <summary>This holder as a run grain records it.</summary>
    public HolderRef Ref => new(Endpoint, Host);
    /// <summary>What it keeps now.</summary>
    public HolderStats Stats => _holder.Stats();

    /// <summary>Starts listening.</summary>
    /// <exception cref="ArgumentException">no valid tenant token, or an address that is not <c>ip:port</c></exception>
    public static async Task<HolderServer> StartAsync(HolderOptions options, ILoggerFactory? logging = null, CancellationToken cancellationToken = default)
    {
        var tenant = TenantTokens.ClaimedTenant(options.TenantToken) ?? throw new ArgumentException("A holder needs the job's tenant token (v1.tenant.expiry.signature).", nameof(options));
        if (!IPEndPoint.TryParse(options.Listen, out var listen)) throw new ArgumentException($"'{options.Listen}' is not an ip:port to listen on.", nameof(options));
        if (options.MaxBytes < 1) throw new ArgumentOutOfRangeException(nameof(options), options.MaxBytes, "MaxBytes must be positive.");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (logging is not null) builder.Services.AddSingleton(logging);
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.Listen(listen);
            kestrel.Limits.MaxRequestBodySize = null; // the holder's own byte budget applies instead
        });
        var server = new HolderServer(builder.Build(), new SnapshotHolder(options.MaxBytes), options.TenantToken, tenant, options.Host);
        server.Map();
        await server._app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = server._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.Endpoint = address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal);
        return server;
    }

    private void Map()
    {
        var snapshots = _app.MapGroup("/v1/snapshots/{tenant}/{run}/{rank:int}/{epoch:long}/{iteration:long}");
        snapshots.MapPut("/{name}", (HttpContext http, string tenant, string run, int rank, long epoch, long iteration, string name) =>
            Authorized(http, tenant, run, rank, epoch, iteration, key => PutAsync(http, key, name)));
        snapshots.MapPost("/complete", (HttpContext http, string tenant, string run, int rank, long epoch, long iteration) =>
            Authorized(http, tenant, run, rank, epoch, iteration, key => CompleteAsync(http, key)));
        snapshots.MapGet("", (HttpContext http, string tenant, string run, int rank, long epoch, long iteration) =>
            Authorized(http, tenant, run, rank, epoch, iteration, key => Task.FromResult(_holder.Get(key) is { } objects
                ? Results.Json(new JsonObject { ["objects"] = new JsonObject(objects.Select(o => KeyValuePair.Create(o.Key, (JsonNode?)o.Value.Length))) })
                : Problem(404, $"snapshot {key.Path} is not held complete here"))));
        snapshots.MapGet("/{name}", (HttpContext http, string tenant, string run, int rank, long epoch, long iteration, string name) =>
            Authorized(http, tenant, run, rank, epoch, iteration, key => Task.FromResult(GetObject(http, key, name))));
        snapshots.MapDelete("", (HttpContext http, string tenant, string run, int rank, long epoch, long iteration) =>
            Authorized(http, tenant, run, rank, epoch, iteration, key => Task.FromResult(_holder.Delete(key) ? Results.NoContent() : Problem(404, $"snapshot {key.Path} is not held here"))));
        _app.MapGet("/v1/holder", (HttpContext http) => !Authenticated(http) ? Problem(401, "this holder accepts exactly the tenant token it was started with") : Results.Json(new JsonObject
        {
            ["bytes_held"] = Stats.BytesHeld, ["max_bytes"] = Stats.MaxBytes, ["complete_snapshots"] = Stats.CompleteSnapshots, ["incomplete_snapshots"] = Stats.IncompleteSnapshots,
        }));
    }

    private IResult GetObject(HttpContext http, SnapshotKey key, string name)
    {
        if (_holder.Get(key)?.GetValueOrDefault(name) is not { } held) return Problem(404, $"object {name} of snapshot {key.Path} is not held complete here");
        http.Response.Headers[ChecksumHeader] = held.Crc64.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
        http.Response.ContentLength = held.Length;
        return Results.Stream(async body => await held.CopyToAsync(body, http.RequestAborted).ConfigureAwait(false), "application/octet-stream");
    }

    private async Task<IResult> Authorized(HttpContext http, string tenant, string run, int rank, long epoch, long iteration, Func<SnapshotKey, Task<IResult>> handle)
    {
        if (!Authenticated(http)) return Problem(401, "this holder accepts exactly the tenant token it was started with");
        if (tenant != _tenant) return Problem(403, $"this holder keeps tenant {_tenant}'s snapshots only");
        return SnapshotKey.Parse(tenant, run, rank, epoch, iteration) is { } key ? await handle(key).ConfigureAwait(false) : Problem(400, "not a valid run, rank and iteration");
    }

    private bool Authenticated(HttpContext http)
    {
        var header = http.Request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.Ordinal) && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[7..]), _token);
    }

    /// <summary>Streams the body into chunks counted against the budget, checking its CRC-64 against the header as it lands.</summary>
    private async Task<IResult> PutAsync(HttpContext http, SnapshotKey key, string name)
    {
        if (!CheckpointName.IsValid(name) && !IsShardFileName(name)) return Problem(400, $"'{name}' is not a valid object name");
        if (!ulong.TryParse(http.Request.Headers[ChecksumHeader].ToString(), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var expected))
            return Problem(400, $"an object needs its CRC-64 in {ChecksumHeader}");
        var chunks = new List<byte[]>();
        var crc = new Crc64();
        long length = 0, reserved = 0;
        try
        {
            var total = http.Request.ContentLength;
            while (true)
            {
                // Chunks sized by the declared length where there is one, so a small object holds (and counts) only its bytes.
                var size = total is { } declared ? (int)Math.Min(ChunkBytes, declared - length) : ChunkBytes;
                if (size == 0) break;
                if (!_holder.TryReserve(size)) return Problem(507, $"this holder keeps at most {_holder.MaxBytes} bytes");
                reserved += size;
                var chunk = GC.AllocateUninitializedArray<byte>(size);
                var filled = await http.Request.Body.ReadAtLeastAsync(chunk, size, throwOnEndOfStream: false, http.RequestAborted).ConfigureAwait(false);
                crc.Append(chunk.AsSpan(0, filled));
                length += filled;
                if (filled > 0) chunks.Add(filled == size ? chunk : chunk.AsSpan(0, filled).ToArray());
                if (filled < size) break;
            }
            if (crc.GetCurrentHashAsUInt64() != expected) return Problem(400, $"object {name} arrived with CRC-64 {crc.GetCurrentHashAsUInt64():x16}, not {expected:x16}");
            var held = new HeldObject(chunks, length, expected);
            var problem = _holder.Put(key, name, held, reserved);
            reserved = 0;
            return problem is null ? Results.NoContent() : Problem(409, problem);
        }
        finally
        {
            if (reserved > 0) _holder.Release(reserved);
        }
    }

    private async Task<IResult> CompleteAsync(HttpContext http, SnapshotKey key)
    {
        JsonObject? body;
        try
        {
            var buffer = new byte[MaxCompletionBytes + 1];
            var read = await http.Request.Body.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, http.RequestAborted).ConfigureAwait(false);
            if (read > MaxCompletionBytes) return Problem(413, $"a completion is at most {MaxCompletionBytes} bytes");
            body = JsonNode.Parse(buffer.AsSpan(0, read), documentOptions: new JsonDocumentOptions { MaxDepth = 4 }) as JsonObject;
            _ = body?.Count; // a duplicate property surfaces here, as ArgumentException
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            return Problem(400, $"the completion is not JSON: {e.Message}");
        }
        if (body?["objects"] is not JsonObject objects || objects.Count > MaxObjects) return Problem(400, $"a completion is {{\"objects\": {{name: bytes}}}} with at most {MaxObjects} objects");
        var lengths = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (name, value) in objects)
        {
            if (value is not JsonValue number || !number.TryGetValue<long>(out var length) || length < 0) return Problem(400, $"object {name}'s size is not a byte count");
            lengths[name] = length;
        }
        SnapshotKey? keep = null;
        if (body["keep"] is JsonObject kept)
        {
            if (kept["epoch"] is not JsonValue epochValue || !epochValue.TryGetValue<long>(out var keptEpoch)
                || kept["iteration"] is not JsonValue iterationValue || !iterationValue.TryGetValue<long>(out var keptIteration))
                return Problem(400, "keep is {\"epoch\": E, \"iteration\": I}");
            keep = key with { Epoch = keptEpoch, Iteration = keptIteration };
        }
        var problem = _holder.Complete(key, lengths, keep);
        return problem is null ? Results.NoContent() : Problem(409, problem);
    }

    /// <summary>Shard files are named by the native format (e.g. <c>shard-00000-of-00001.a1b2c3d4.safetensors</c>) and manifests <c>manifest.json</c>.</summary>
    private static bool IsShardFileName(string name) =>
        name.Length is > 0 and <= 200 && !name.StartsWith('.') && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_');

    private static IResult Problem(int status, string detail) => Results.Problem(detail, statusCode: status);

    /// <summary>Stops listening; what it kept is gone.</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
