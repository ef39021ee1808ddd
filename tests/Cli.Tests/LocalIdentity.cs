using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;

namespace Checkpointing.Cli.Tests;

/// <summary>
/// A machine identity on this machine: a certificate for 127.0.0.1 (for Azurite over https), the CA bundle that makes
/// child processes trust it (<c>SSL_CERT_FILE</c>), and a managed-identity token endpoint of the App Service kind
/// (<c>IDENTITY_ENDPOINT</c>, <c>IDENTITY_HEADER</c>), which Azure.Identity's DefaultAzureCredential finds and asks for
/// storage tokens. The tokens are JWTs with a storage audience and an Entra issuer, unsigned: Azurite's basic OAuth
/// checks issuer, audience and lifetime only.
/// </summary>
public sealed class LocalIdentity : IAsyncDisposable
{
    private readonly HttpListener _listener;
    private readonly Task _serving;
    private int _tokensIssued;

    private LocalIdentity(string folder, HttpListener listener, Uri endpoint)
    {
        Folder = folder;
        _listener = listener;
        TokenEndpoint = endpoint;
        _serving = Task.Run(ServeAsync);
    }

    public string Folder { get; }
    public string CertificatePath => Path.Combine(Folder, "azurite.pem");
    public string KeyPath => Path.Combine(Folder, "azurite.key");
    public string BundlePath => Path.Combine(Folder, "trusted.pem");
    public Uri TokenEndpoint { get; }
    public string Secret { get; } = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
    public int TokensIssued => Volatile.Read(ref _tokensIssued);

    /// <summary>What a process needs to run as this identity and trust the local https endpoints.</summary>
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string>
    {
        ["SSL_CERT_FILE"] = BundlePath,
        ["IDENTITY_ENDPOINT"] = TokenEndpoint.ToString(),
        ["IDENTITY_HEADER"] = Secret,
    };

    public static LocalIdentity Start()
    {
        var folder = Directory.CreateTempSubdirectory("ckpt-identity-").FullName;
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var pem = certificate.ExportCertificatePem() + "\n";
        File.WriteAllText(Path.Combine(folder, "azurite.pem"), pem);
        File.WriteAllText(Path.Combine(folder, "azurite.key"), key.ExportPkcs8PrivateKeyPem() + "\n");
        const string system = "/etc/ssl/certs/ca-certificates.crt";
        File.WriteAllText(Path.Combine(folder, "trusted.pem"), (File.Exists(system) ? File.ReadAllText(system) + "\n" : "") + pem);

        var port = Processes.Azurite.FreePort();
        var endpoint = new Uri($"http://127.0.0.1:{port}/msi/token/");
        var listener = new HttpListener();
        listener.Prefixes.Add(endpoint.ToString());
        listener.Start();
        return new LocalIdentity(folder, listener, endpoint);
    }

    /// <summary>An unsigned JWT as Entra ID shapes a storage token.</summary>
    public static string Jwt(string issuer, string audience, TimeSpan lifetime)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        static string Encode(object value) => Convert.ToBase64String(JsonSerializer.SerializeToUtf8Bytes(value)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var header = Encode(new { alg = "RS256", typ = "JWT" });
        var payload = Encode(new { aud = audience, iss = issuer, iat = now - 60, nbf = now - 60, exp = now + (long)lifetime.TotalSeconds, oid = ObjectId, tid = TenantId, sub = "local-identity" });
        return $"{header}.{payload}.{Convert.ToBase64String(Encoding.ASCII.GetBytes("unsigned")).TrimEnd('=')}";
    }

    /// <summary>The directory (tenant) the identity belongs to; Entra's issuer and the token's <c>tid</c> name it.</summary>
    public const string TenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    /// <summary>The identity's object id (<c>oid</c>), which a user-delegation key is issued to.</summary>
    public static readonly Guid ObjectId = Guid.NewGuid();

    public static string EntraIssuer => $"https://sts.windows.net/{TenantId}/";

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try { context = await _listener.GetContextAsync(); }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException) { return; }
            var response = context.Response;
            if (context.Request.Headers["X-IDENTITY-HEADER"] != Secret)
            {
                response.StatusCode = 401;
                response.Close();
                continue;
            }
            var resource = context.Request.QueryString["resource"] ?? "https://storage.azure.com";
            var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string>
            {
                ["access_token"] = Jwt(EntraIssuer, resource.TrimEnd('/'), TimeSpan.FromHours(1)),
                ["expires_on"] = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["resource"] = resource,
                ["token_type"] = "Bearer",
            });
            Interlocked.Increment(ref _tokensIssued);
            response.ContentType = "application/json";
            await response.OutputStream.WriteAsync(body);
            response.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        await _serving;
        Directory.Delete(Folder, recursive: true);
    }
}
