using System.Text.Json.Nodes;
using Checkpointing.TestSupport;

namespace Checkpointing.Cli.Tests;

/// <summary>
/// Blob storage goes down under a real `ckpt-lab agent` process for longer than its outage budget: one JSON error event naming
/// the budget, exit code 1, the previous checkpoint still the run's last and loadable.
/// </summary>
[Collection(nameof(CliCollection))]
public sealed class AgentFaultCliTests
{
    [Fact]
    public async Task Storage_down_during_an_agents_upload_is_one_error_event_and_the_previous_checkpoint_stays_last()
    {
        await using var silo = await TestSilo.StartAsync();
        await using var proxy = new FlakyProxy(silo.Azurite.BlobPort);
        var storage = silo.Azurite.ConnectionString.Replace($"127.0.0.1:{silo.Azurite.BlobPort}", $"127.0.0.1:{proxy.Port}", StringComparison.Ordinal);
        var cluster = silo.ClusterArgs("acme");
        // No periodic saves: the test asks for each checkpoint with checkpoint-now, so it knows when each upload happens.
        var created = await CliRunner.Ckpt.InProcess(["run", "create", "acme/r1", "--period", "1000000", "--max-iter", "1000000", .. cluster]);
        Assert.True(created.ExitCode == 0, created.Error);

        // Storage:OutageBudget as the environment carries it (ckpt-lab agent --outage-budget 3 says the same).
        await using var first = AgentProcess.Start(await Attempt(cluster), storage, cluster, new Dictionary<string, string> { ["CKPT_Storage__OutageBudget"] = "00:00:03" });
        await first.Next("start");
        await CliRunner.Ckpt.InProcess(["run", "checkpoint-now", "acme/r1", .. cluster]);
        var saved = (string)(await first.Next("saved"))["name"]!;
        proxy.Break();
        await CliRunner.Ckpt.InProcess(["run", "checkpoint-now", "acme/r1", .. cluster]);
        var (exitCode, lines, stderr) = await first.WaitForExit();

        Assert.True(exitCode == 1, $"exit code {exitCode}; stderr: {stderr}");
        Assert.DoesNotContain(" at ", stderr, StringComparison.Ordinal);
        Assert.All(lines, l => Assert.IsType<JsonObject>(JsonNode.Parse(l)));
        var error = JsonNode.Parse(lines[^1])!.AsObject();
        Assert.Equal("error", (string)error["event"]!);
        Assert.Equal("storage_unavailable", (string)error["kind"]!);
        Assert.Contains("outage budget of 3 s", (string)error["error"]!);
        Assert.Equal(0, (int)error["rank"]!);
        Assert.Single(lines, l => l.Contains("\"error\"", StringComparison.Ordinal));

        var run = (await CliRunner.Ckpt.InProcess(["run", "show", "acme/r1", "--json", .. cluster])).Json;
        Assert.Equal(saved, (string)run["last"]!);
        Assert.Equal([saved], run["checkpoints"]!.AsArray().Select(c => (string)c!["name"]!));

        // Storage back: a restarted agent resumes from that checkpoint, reading every shard back.
        proxy.Heal();
        await using var second = AgentProcess.Start(await Attempt(cluster), storage, cluster);
        Assert.Equal(saved, (string)(await second.Next("start"))["resumed_from"]!);
    }

    private static async Task<long> Attempt(string[] cluster) =>
        (long)(await CliRunner.Ckpt.InProcess(["run", "attempt", "acme/r1", "--json", .. cluster])).Json["epoch"]!;
}
