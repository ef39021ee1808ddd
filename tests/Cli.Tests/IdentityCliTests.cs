using System.Net;
using System.Text.Json.Nodes;
using Checkpointing.Processes;

namespace Checkpointing.Cli.Tests;

/// <summary>
/// No account key anywhere: a silo process and a `ckpt-lab agent` process reach Azurite (https, OAuth) as a machine
/// identity, through DefaultAzureCredential and a local managed-identity endpoint, and a checkpointed run commits; a rank
/// given no storage at all writes and reads through grants the silo signs with a user-delegation key.
/// </summary>
[Collection(nameof(CliCollection))]
public sealed class IdentityCliTests
{
    [Fact]
    public async Task A_silo_and_an_agent_holding_no_key_save_and_commit_as_their_identity()
    {
        await using var identity = LocalIdentity.Start();
        await using var azurite = await Azurite.StartAsync(TestSilo.RepoRoot, oauth: new AzuriteOAuth(identity.CertificatePath, identity.KeyPath));
        await AssertAzuriteChecksTokensAsync(azurite, identity);
        var storage = new Dictionary<string, string>(identity.Environment)
        {
            ["CKPT_Storage__BlobServiceUri"] = azurite.BlobServiceUri.ToString(),
            ["CKPT_Storage__TableServiceUri"] = azurite.TableServiceUri.ToString(),
        };
        Assert.DoesNotContain(storage.Values, value => value.Contains("AccountKey", StringComparison.Ordinal));
        await using var silo = await TestSilo.StartAsync(azurite, storage);
        var siloTokens = identity.TokensIssued;
        Assert.True(siloTokens > 0, "the silo became ready without asking the identity endpoint for a token");

        var cluster = silo.ClusterArgs("acme");
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess(["run", "create", "acme/r1", "--period", "4", "--max-iter", "8", .. cluster])).ExitCode);
        var epoch = (long)(await CliRunner.Ckpt.InProcess(["run", "attempt", "acme/r1", "--json", .. cluster])).Json["epoch"]!;
        var agent = await CliRunner.Lab.OutOfProcessWithEnvironment(TimeSpan.FromMinutes(3),
            new Dictionary<string, string>(identity.Environment) { ["CKPT_STORAGE"] = azurite.BlobServiceUri.ToString() },
            ["agent", "--run", "acme/r1", "--rank", "0", "--world-size", "1", "--epoch", $"{epoch}", "--width", "16", .. cluster]);

        Assert.True(agent.ExitCode == 0, $"agent exit {agent.ExitCode}: {agent.Out}\n{agent.Error}");
        Assert.True(identity.TokensIssued > siloTokens, "the agent wrote its shards without a token of its own");
        var run = (await CliRunner.Ckpt.InProcess(["run", "show", "acme/r1", "--json", .. cluster])).Json;
        var names = run["checkpoints"]!.AsArray().Select(c => (string)c!["name"]!).ToList();
        Assert.Equal(["model_0000003", "model_0000007", "model_final"], names);

        // A rank given no storage at all: the silo signs its grants with a user-delegation key of its own identity.
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess(["run", "create", "acme/r2", "--period", "4", "--max-iter", "8", .. cluster])).ExitCode);
        var epoch2 = (long)(await CliRunner.Ckpt.InProcess(["run", "attempt", "acme/r2", "--json", .. cluster])).Json["epoch"]!;
        // It trusts the storage's certificate, as any process does a public CA's, and has no identity and no key.
        var granted = await CliRunner.Lab.OutOfProcessWithEnvironment(TimeSpan.FromMinutes(3), new Dictionary<string, string> { ["SSL_CERT_FILE"] = identity.BundlePath },
            ["agent", "--run", "acme/r2", "--rank", "0", "--world-size", "1", "--epoch", $"{epoch2}", "--width", "16", .. cluster]);
        Assert.True(granted.ExitCode == 0, $"granted agent exit {granted.ExitCode}: {granted.Out}\n{granted.Error}");
        var run2 = (await CliRunner.Ckpt.InProcess(["run", "show", "acme/r2", "--json", .. cluster])).Json;
        Assert.Equal(["model_0000003", "model_0000007", "model_final"], run2["checkpoints"]!.AsArray().Select(c => (string)c!["name"]!));
    }

    /// <summary>The test means something only if Azurite refuses what it should: no credential, or a token of a foreign issuer.</summary>
    private static async Task AssertAzuriteChecksTokensAsync(Azurite azurite, LocalIdentity identity)
    {
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, certificate, _, _) => certificate?.Subject == "CN=127.0.0.1" };
        using var http = new HttpClient(handler);
        async Task<HttpStatusCode> ListWith(string? token)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"{azurite.BlobServiceUri}?comp=list");
            request.Headers.Add("x-ms-version", "2025-01-05");
            if (token is not null) request.Headers.Authorization = new("Bearer", token);
            using var response = await http.SendAsync(request);
            return response.StatusCode;
        }
        Assert.Equal(HttpStatusCode.OK, await ListWith(LocalIdentity.Jwt(LocalIdentity.EntraIssuer, "https://storage.azure.com", TimeSpan.FromMinutes(5))));
        Assert.NotEqual(HttpStatusCode.OK, await ListWith(null));
        Assert.NotEqual(HttpStatusCode.OK, await ListWith(LocalIdentity.Jwt("https://issuer.example/", "https://storage.azure.com", TimeSpan.FromMinutes(5))));
        Assert.Equal(0, identity.TokensIssued);
    }
}
