using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Checkpointing.TestSupport;

namespace Checkpointing.Grains.Tests;

/// <summary>One silo process with small limits, so that each abuse reaches them quickly.</summary>
public sealed class SmallLimitsSilo : IAsyncLifetime
{
    public const int MaxConnections = 40;
    public const int Burst = 5;
    public const int DefaultMaxRuns = 3;

    public SiloProcess Silo { get; private set; } = null!;

    public async Task InitializeAsync() => Silo = await SiloProcess.StartAsync($"abuse-{Guid.NewGuid():N}", "UseDevelopmentStorage=true", TestTenancy.SigningKey, mode: "Dev",
        new Dictionary<string, string>
        {
            ["CKPT_Storage__GrainState"] = "Memory",
            ["CKPT_Storage__Checkpoints"] = "Memory",
            ["CKPT_Http__MaxConcurrentConnections"] = $"{MaxConnections}",
            ["CKPT_Http__RequestHeadersTimeout"] = "00:00:02",
            ["CKPT_Http__KeepAliveTimeout"] = "00:00:02",
            ["CKPT_Http__TenantBurst"] = $"{Burst}",
            ["CKPT_Http__TenantRequestsPerSecond"] = "1",
            ["CKPT_Tenancy__DefaultMaxRuns"] = $"{DefaultMaxRuns}",
        });

    public async Task DisposeAsync() => await Silo.DisposeAsync();

    public HttpClient Client() => new() { BaseAddress = new Uri($"http://127.0.0.1:{Silo.HealthPort}"), Timeout = TimeSpan.FromSeconds(30) };
}

/// <summary>
/// One tenant, or one client, must never take the silo down for everyone: oversized fields are refused at the edge,
/// idle connections cannot exhaust it, a tenant's request rate is bounded, and a tenant's run count has a finite default.
/// </summary>
public sealed class SiloAbuseTests(SmallLimitsSilo fixture) : IClassFixture<SmallLimitsSilo>
{
    private static async Task<(HttpStatusCode Status, HttpResponseMessage Response)> SendAsync(HttpClient http, HttpMethod method, string path, string tenant, string? body = null)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TestTenancy.Token(tenant));
        request.Headers.ExpectContinue = body is { Length: > 1 << 20 }; // a refused large body is never sent: the answer comes instead of 100 Continue
        if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        var response = await http.SendAsync(request);
        return (response.StatusCode, response);
    }

    [Fact]
    public async Task A_checkpoint_now_reason_past_its_bound_is_refused_and_never_stored()
    {
        using var http = fixture.Client();
        Assert.Equal(HttpStatusCode.Created, (await SendAsync(http, HttpMethod.Post, "/api/v1/runs/reasons/r", "reasons", """{"period": 10}""")).Status);

        var huge = JsonValue.Create(new string('x', 20 << 20))!.ToJsonString();
        var (hugeStatus, _) = await SendAsync(http, HttpMethod.Post, "/api/v1/runs/reasons/r/checkpoint-now", "reasons", $$"""{"reason": {{huge}}}""");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, hugeStatus);
        var (longStatus, longResponse) = await SendAsync(http, HttpMethod.Post, "/api/v1/runs/reasons/r/checkpoint-now", "reasons",
            $$"""{"reason": "{{new string('y', Contracts.RequestBounds.MaxReasonLength + 1)}}"}""");
        Assert.Equal(HttpStatusCode.BadRequest, longStatus);
        Assert.Contains($"at most {Contracts.RequestBounds.MaxReasonLength} characters", await longResponse.Content.ReadAsStringAsync());

        var (_, shown) = await SendAsync(http, HttpMethod.Get, "/api/v1/runs/reasons/r", "reasons");
        var run = JsonNode.Parse(await shown.Content.ReadAsStringAsync())!;
        Assert.Null(run["checkpoint_request"]);
        Assert.False(fixture.Silo.HasExited);
    }

    [Fact]
    public async Task Idle_connections_past_the_limit_leave_the_silo_up_and_serving_once_they_time_out()
    {
        var idle = new List<TcpClient>();
        try
        {
            for (var i = 0; i < 5 * SmallLimitsSilo.MaxConnections; i++)
            {
                var client = new TcpClient();
                idle.Add(client);
                await client.ConnectAsync(IPAddress.Loopback, fixture.Silo.HealthPort);
            }
            // Connections that never send a request are closed after the keep-alive timeout (2 s here); until then new ones past
            // the limit are refused. Either way the process lives, and a well-behaved client is served again.
            using var http = fixture.Client();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            HttpStatusCode? status = null;
            while (status != HttpStatusCode.OK && DateTime.UtcNow < deadline)
            {
                try { status = (await http.GetAsync("/healthz")).StatusCode; }
                catch (HttpRequestException) { await Task.Delay(200); }
            }
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.False(fixture.Silo.HasExited);
            var closed = idle.Count(c => c.Client.Poll(0, SelectMode.SelectRead) && c.Client.Available == 0);
            Assert.True(closed >= 4 * SmallLimitsSilo.MaxConnections, $"the silo closed only {closed} of {idle.Count} idle connections");
        }
        finally
        {
            foreach (var client in idle) client.Dispose();
        }
    }

    [Fact]
    public async Task A_tenant_past_its_request_rate_gets_429_and_another_tenant_is_served()
    {
        using var http = fixture.Client();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 4 * SmallLimitsSilo.Burst; i++) statuses.Add((await SendAsync(http, HttpMethod.Get, "/api/v1/tenants/noisy/runs", "noisy")).Status);

        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        Assert.True(statuses.Count(s => s == HttpStatusCode.OK) <= SmallLimitsSilo.Burst + 2, string.Join(", ", statuses)); // the burst, plus refills while looping
        var (limited, response) = await SendAsync(http, HttpMethod.Get, "/api/v1/tenants/noisy/runs", "noisy");
        Assert.Equal(HttpStatusCode.TooManyRequests, limited);
        Assert.Equal("1", response.Headers.GetValues("Retry-After").Single());
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(http, HttpMethod.Get, "/api/v1/tenants/quiet/runs", "quiet")).Status);
    }

    [Fact]
    public async Task A_tenant_whose_limits_were_never_set_has_a_finite_number_of_runs()
    {
        using var http = fixture.Client();
        for (var i = 0; i < SmallLimitsSilo.DefaultMaxRuns; i++)
            Assert.Equal(HttpStatusCode.Created, (await SendAsync(http, HttpMethod.Post, $"/api/v1/runs/many/r{i}", "many", """{"period": 10}""")).Status);

        var (refused, response) = await SendAsync(http, HttpMethod.Post, "/api/v1/runs/many/one-too-many", "many", """{"period": 10}""");

        Assert.Equal(HttpStatusCode.Conflict, refused);
        Assert.Contains($"its limit is {SmallLimitsSilo.DefaultMaxRuns}", await response.Content.ReadAsStringAsync());
    }
}
