using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Storage;
using Checkpointing.TestSupport;
using Checkpointing.TrainerAgent;
using Xunit.Abstractions;

namespace Checkpointing.Grains.Tests;

/// <summary>
/// The API's contract three ways on a real silo process over Azurite: every operation's real answer (with a committed checkpoint,
/// a pending one a rank has not reported, a load and heartbeats, so that no list is empty) matches the schema the silo's OpenAPI
/// document gives it, and every JSON example the README and docs/ show for an operation has the keys and kinds of its real answer.
/// </summary>
public sealed partial class ApiContractTests(ITestOutputHelper output)
{
    /// <summary>An example in the docs: the marker line names the operation, the fenced json block after it is its answer.</summary>
    [GeneratedRegex(@"<!-- example: (?<operation>\w+) -->\s*```json\n(?<json>.*?)\n```", RegexOptions.Singleline)]
    private static partial Regex DocumentedExample();

    [Fact]
    public async Task Real_answers_match_their_OpenAPI_schemas_and_every_documented_example_has_their_keys_and_kinds()
    {
        await using var azurite = await RepoPaths.StartAzurite();
        var clusterId = $"contract-{Guid.NewGuid():N}";
        await using var silo = await SiloProcess.StartAsync(clusterId, azurite.ConnectionString, TestTenancy.SigningKey, mode: "Dev");
        await using var connection = await ClusterConnection.ConnectAsync(new ClusterConnectionOptions
        {
            Gateways = [$"127.0.0.1:{silo.GatewayPort}"], ClusterId = clusterId, TenantToken = TestTenancy.Token("acme"),
        });
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{silo.HealthPort}"), Timeout = TimeSpan.FromSeconds(30) };
        var (own, operatorToken) = (TestTenancy.Token("acme"), TestTenancy.Token("*"));
        var answers = new Dictionary<string, JsonNode>();
        async Task Answer(string operation, HttpMethod method, string path, string? body = null, string? token = null) =>
            answers[operation] = await SendAsync(http, method, path, body, token ?? own);

        await Answer("CreateRun", HttpMethod.Post, "/api/v1/runs/acme/contract", """{"period": 10, "max_iter": 1000, "max_to_keep": 3}""");
        var job = new FakeJob(connection.Client, AzureBlobStore.FromConnectionString(azurite.ConnectionString, "checkpoints"), new RunId("acme", "contract"), worldSize: 2);
        job.Epoch = await job.Grain.StartAttempt();
        await job.SaveAsync("model_0000009", 9);
        await job.Grain.RecordLoad(new LoadReport("model_0000009", 1, job.Epoch, 0.25, 4096));
        var pending = await job.Begin("model_0000019", 19, 0);
        await job.Grain.ReportShard(await job.WriteShard(pending, 19)); // rank 1 never reports: model_0000019 stays pending
        await job.Grain.Heartbeat(new RankHeartbeat(0, 2, job.Epoch, 19, 0.125, 0.05));
        await job.Grain.Heartbeat(new RankHeartbeat(1, 2, job.Epoch, 19, 0.25, 0.06));

        await Answer("GetRun", HttpMethod.Get, "/api/v1/runs/acme/contract");
        await Answer("SetRunPolicy", HttpMethod.Put, "/api/v1/runs/acme/contract/policy", """{"period": 10, "max_iter": 1000, "max_to_keep": 3}""");
        await Answer("RequestCheckpointNow", HttpMethod.Post, "/api/v1/runs/acme/contract/checkpoint-now", """{"reason": "preemption notice"}""");
        await Answer("GetRunHistory", HttpMethod.Get, "/api/v1/runs/acme/contract/history");
        await Answer("GetRunProgress", HttpMethod.Get, "/api/v1/runs/acme/contract/progress");
        await Answer("ListTenantRuns", HttpMethod.Get, "/api/v1/tenants/acme/runs?offset=0&limit=10");
        await Answer("ListTenants", HttpMethod.Get, "/api/v1/tenants", token: operatorToken);
        await Answer("RecoverRunCatalog", HttpMethod.Post, "/api/v1/runs/acme/contract/recover", token: operatorToken);
        await SendAsync(http, HttpMethod.Post, "/api/v1/runs/acme/doomed", """{"period": 5}""", own);
        await Answer("DeleteRun", HttpMethod.Delete, "/api/v1/runs/acme/doomed");

        // Written out for whoever updates the docs' examples: what the API really answered.
        var written = Path.Combine(RepoPaths.Root, "artifacts", "api-answers");
        Directory.CreateDirectory(written);
        foreach (var (operation, answer) in answers) await File.WriteAllTextAsync(Path.Combine(written, $"{operation}.json"), answer.ToJsonString(new() { WriteIndented = true }));
        var document = JsonNode.Parse(await http.GetStringAsync("/openapi/v1.json"))!;
        var operations = document["paths"]!.AsObject().SelectMany(path => path.Value!.AsObject().Select(op => op.Value!)).ToDictionary(op => (string)op["operationId"]!);
        Assert.Equal(operations.Keys.Order(), answers.Keys.Order()); // every operation answered once here
        foreach (var (operation, answer) in answers)
        {
            var success = operations[operation]["responses"]!.AsObject().First(r => r.Key.StartsWith('2')).Value!;
            var problems = JsonContract.AgainstSchema(answer, success["content"]!["application/json"]!["schema"]!, document);
            Assert.True(problems.Count == 0, $"{operation}'s answer does not match its schema:\n{string.Join('\n', problems)}\n{answer.ToJsonString()}");
        }
        // The lists the examples are compared against are not empty, so their items are compared too.
        Assert.Equal([1], answers["GetRun"]["pending"]![0]!["ranks_missing"]!.AsArray().Select(r => (int)r!));
        Assert.Equal(["save", "load"], answers["GetRunHistory"]["history"]!.AsArray().Select(h => (string)h!["kind"]!));
        Assert.Equal("checkpointing", (string)answers["GetRun"]["health"]!["state"]!);

        var examples = new[] { "README.md" }.Concat(Directory.GetFiles(Path.Combine(RepoPaths.Root, "docs"), "*.md").Select(f => Path.GetRelativePath(RepoPaths.Root, f)))
            .SelectMany(file => DocumentedExample().Matches(File.ReadAllText(Path.Combine(RepoPaths.Root, file))).Select(m => (File: file, Operation: m.Groups["operation"].Value, Json: m.Groups["json"].Value)))
            .ToList();
        Assert.Contains(examples, e => e.File == "README.md");
        Assert.True(examples.Count >= 6, $"only {examples.Count} documented examples found");
        foreach (var (file, operation, json) in examples)
        {
            Assert.True(answers.ContainsKey(operation), $"{file} shows an example of '{operation}', which is no operation of the API");
            var example = JsonNode.Parse(json);
            var problems = JsonContract.AgainstAnswer(example, answers[operation])
                .Concat(JsonContract.AgainstSchema(example, operations[operation]["responses"]!.AsObject().First(r => r.Key.StartsWith('2')).Value!["content"]!["application/json"]!["schema"]!, document))
                .ToList();
            Assert.True(problems.Count == 0, $"{file}'s example of {operation} is not what the API answers:\n{string.Join('\n', problems)}\nreal answer: {answers[operation].ToJsonString()}");
            output.WriteLine($"{file}: {operation} example matches");
        }
    }

    private static async Task<JsonNode> SendAsync(HttpClient http, HttpMethod method, string path, string? body, string token)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{method} {path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }
}
