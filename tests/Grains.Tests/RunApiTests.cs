using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Checkpointing.TestSupport;

namespace Checkpointing.Grains.Tests;

/// <summary>
/// The silo's HTTP API (/api/v1) on a real silo process over Azurite: every endpoint under every kind of
/// credential (none, another tenant's, the tenant's own, the operator's), the CLI's JSON shapes, problem+json
/// errors, and the OpenAPI document.
/// </summary>
public sealed class RunApiTests
{
    private sealed record Call(string Name, HttpMethod Method, string Path, string? Body = null);

    private static IEnumerable<Call> EveryEndpoint(string run) =>
    [
        new("create", HttpMethod.Post, $"/api/v1/runs/acme/{run}", """{"period": 10, "max_to_keep": 2}"""),
        new("show", HttpMethod.Get, $"/api/v1/runs/acme/{run}"),
        new("policy", HttpMethod.Put, $"/api/v1/runs/acme/{run}/policy", """{"period": 5, "max_to_keep": 3, "file_prefix": "net"}"""),
        new("checkpoint-now", HttpMethod.Post, $"/api/v1/runs/acme/{run}/checkpoint-now", """{"reason": "preemption notice"}"""),
        new("tenant runs", HttpMethod.Get, "/api/v1/tenants/acme/runs"),
        new("history", HttpMethod.Get, $"/api/v1/runs/acme/{run}/history"),
        new("delete", HttpMethod.Delete, $"/api/v1/runs/acme/{run}"),
    ];

    private static async Task<(HttpStatusCode Status, string? MediaType, JsonObject? Json)> SendAsync(HttpClient http, Call call, string? token)
    {
        using var request = new HttpRequestMessage(call.Method, call.Path);
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (call.Body is not null) request.Content = new StringContent(call.Body, Encoding.UTF8, "application/json");
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, response.Content.Headers.ContentType?.MediaType, text.Length > 0 ? JsonNode.Parse(text) as JsonObject : null);
    }

    [Fact]
    public async Task Every_endpoint_answers_by_credential_with_the_CLI_shapes_and_problem_json_errors()
    {
        var azurite = await RepoPaths.StartAzurite();
        try
        {
            await using var silo = await SiloProcess.StartAsync($"api-{Guid.NewGuid():N}", azurite.ConnectionString, TestTenancy.SigningKey, mode: "Dev");
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{silo.HealthPort}"), Timeout = TimeSpan.FromSeconds(30) };

            foreach (var (who, token, expected) in new (string, string?, HttpStatusCode)[]
            {
                ("no token", null, HttpStatusCode.Unauthorized),
                ("a forged token", "acme.9999999999.AAAA", HttpStatusCode.Unauthorized),
                ("another tenant's token", TestTenancy.Token("globex"), HttpStatusCode.Forbidden),
            })
            {
                foreach (var call in EveryEndpoint("denied"))
                {
                    var (status, media, body) = await SendAsync(http, call, token);
                    Assert.True(status == expected, $"{call.Name} with {who}: {status}, expected {expected}");
                    Assert.Equal("application/problem+json", media);
                    Assert.Equal((int)expected, (int)body!["status"]!);
                }
            }

            foreach (var (who, token) in new[] { ("own", TestTenancy.Token("acme")), ("operator", TestTenancy.Token("*")) })
            {
                var run = $"r-{who}";
                var results = new Dictionary<string, JsonObject>();
                foreach (var call in EveryEndpoint(run))
                {
                    var (status, media, body) = await SendAsync(http, call, token);
                    var success = call.Name == "create" ? HttpStatusCode.Created : HttpStatusCode.OK;
                    Assert.True(status == success, $"{call.Name} with the {who} token: {status} {body?.ToJsonString()}");
                    Assert.Equal("application/json", media);
                    results[call.Name] = body!;
                }
                Assert.Equal($"acme/{run}", (string)results["show"]["run"]!);
                Assert.Equal(2, (int)results["show"]["policy"]!["max_to_keep"]!);
                Assert.Equal("net", (string)results["policy"]["policy"]!["file_prefix"]!);
                Assert.Equal("preemption notice", (string)results["checkpoint-now"]["requested"]!);
                Assert.Contains(results["tenant runs"]["runs"]!.AsArray(), r => (string)r!["run"]! == run);
                Assert.Equal($"acme/{run}", (string)results["history"]["run"]!);
                Assert.Empty(results["history"]["history"]!.AsArray()); // nothing saved or loaded yet
                Assert.Equal($"acme/{run}", (string)results["delete"]["deleted"]!);

                var (gone, goneMedia, problem) = await SendAsync(http, new Call("show", HttpMethod.Get, $"/api/v1/runs/acme/{run}"), token);
                Assert.Equal(HttpStatusCode.NotFound, gone);
                Assert.Equal("application/problem+json", goneMedia);
                Assert.Contains(run, (string)problem!["detail"]!);
            }

            var own = TestTenancy.Token("acme");
            var (badName, _, _) = await SendAsync(http, new Call("bad name", HttpMethod.Get, "/api/v1/runs/acme/..%2Fx"), own);
            Assert.Equal(HttpStatusCode.BadRequest, badName);
            var (badBody, badMedia, _) = await SendAsync(http, new Call("bad body", HttpMethod.Post, "/api/v1/runs/acme/r-bad", "{\"period\": "), own);
            Assert.Equal(HttpStatusCode.BadRequest, badBody);
            Assert.Equal("application/problem+json", badMedia);
            var (badPolicy, _, _) = await SendAsync(http, new Call("bad policy", HttpMethod.Post, "/api/v1/runs/acme/r-bad", """{"period": 0}"""), own);
            Assert.Equal(HttpStatusCode.BadRequest, badPolicy);

            using var metrics = await http.GetAsync("/metrics");
            Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
            Assert.Equal("text/plain", metrics.Content.Headers.ContentType?.MediaType);
            // The resource names the service, and the platform's meters come with the silo's own (whose instruments appear at their first commit).
            var exposition = await metrics.Content.ReadAsStringAsync();
            Assert.Contains("service_name=\"checkpointing-silo\"", exposition, StringComparison.Ordinal);
            Assert.Matches("(?m)^orleans_", exposition);                   // Orleans
            Assert.Matches("(?m)^dotnet_gc_", exposition);                 // the .NET runtime
            Assert.Matches("(?m)^http_server_request_duration_", exposition); // ASP.NET Core hosting

            // The Orleans Dashboard is the operator's: a tenant's token is refused, the operator's opens it (as a cookie for its own scripts).
            Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/orleans/")).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await http.GetAsync($"/orleans/?token={Uri.EscapeDataString(TestTenancy.Token("acme"))}")).StatusCode);
            using (var cookies = new HttpClient(new HttpClientHandler { UseCookies = true, CookieContainer = new CookieContainer() }) { BaseAddress = http.BaseAddress })
            {
                using var dashboard = await cookies.GetAsync($"/orleans/?token={Uri.EscapeDataString(TestTenancy.Token("*"))}");
                Assert.Equal(HttpStatusCode.OK, dashboard.StatusCode); // redirected to /orleans/ and let in by the cookie
                Assert.Equal("text/html", dashboard.Content.Headers.ContentType?.MediaType);
                Assert.DoesNotContain("token=", dashboard.RequestMessage!.RequestUri!.Query);
            }

            var openApi = JsonNode.Parse(await http.GetStringAsync("/openapi/v1.json"))!;
            var paths = openApi["paths"]!.AsObject().Select(p => p.Key).ToList();
            Assert.Contains("/api/v1/runs/{tenant}/{run}", paths);
            Assert.Contains("/api/v1/runs/{tenant}/{run}/checkpoint-now", paths);
            Assert.Contains("/api/v1/tenants/{tenant}/runs", paths);
            // Only the API: not the Orleans Dashboard, the probes, /stats or /metrics.
            Assert.All(paths, path => Assert.StartsWith("/api/v1/", path, StringComparison.Ordinal));
            Assert.Equal("bearer", (string)openApi["components"]!["securitySchemes"]!["bearer"]!["scheme"]!);
            var create = openApi["paths"]!["/api/v1/runs/{tenant}/{run}"]!["post"]!;
            Assert.Equal("CreateRun", (string)create["operationId"]!);
            Assert.Equal(["201", "400", "401", "403", "409"], create["responses"]!.AsObject().Select(r => r.Key).Order());
            using (var created = await http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/v1/runs/acme/r-located")
            {
                Content = new StringContent("""{"period": 5}""", System.Text.Encoding.UTF8, "application/json"),
                Headers = { Authorization = new("Bearer", TestTenancy.Token("acme")) },
            }))
            {
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
                Assert.Equal("/api/v1/runs/acme/r-located", created.Headers.Location?.OriginalString);
            }
        }
        finally
        {
            await azurite.DisposeAsync();
        }
    }
}
