using System.Diagnostics;
using System.Text.Json.Nodes;
using Checkpointing.Contracts;
using Checkpointing.TrainerAgent;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace Checkpointing.Cli.Tests;

/// <summary>
/// The silo's operator console in a real browser, with real agents, a real silo and Azurite: deep links, live tables and charts,
/// checkpoint-now, a SIGKILLed rank named as missing, tenant isolation, and a tenant of 1,000 runs. Screenshots go to
/// artifacts/screenshots.
/// </summary>
[Collection(nameof(CliCollection))]
public sealed class ConsoleBrowserTests(ITestOutputHelper output)
{
    private static readonly LocatorAssertionsToBeVisibleOptions Patiently = new() { Timeout = 30_000 };

    [Fact]
    public async Task A_deep_link_opens_the_run_whose_charts_plot_every_committed_checkpoint_and_checkpoint_now_adds_one()
    {
        await using var silo = await TestSilo.StartAsync();
        var cluster = silo.ClusterArgs("acme");
        // No periodic saves: each checkpoint is asked for, so the test knows which ones exist.
        var created = await CliRunner.Ckpt.InProcess(["run", "create", "acme/r1", "--period", "1000000", "--max-iter", "1000000", .. cluster]);
        Assert.True(created.ExitCode == 0, created.Error);
        var epoch = (long)(await CliRunner.Ckpt.InProcess(["run", "attempt", "acme/r1", "--json", .. cluster])).Json["epoch"]!;
        await using var agent = AgentProcess.Start(epoch, silo.Azurite.ConnectionString, cluster, options: ["--heartbeat-ms", "500", "--step-delay-ms", "20"]);
        await agent.Next("start");
        await CliRunner.Ckpt.InProcess(["run", "checkpoint-now", "acme/r1", .. cluster]);
        var first = (string)(await agent.Next("saved"))["name"]!;
        await using var browser = await ConsoleBrowser.LaunchAsync();

        // The tenant's own page first: the run listed with its state; its link is the deep link.
        var page = await browser.OpenAsync(silo, "/", silo.Token("acme"));
        Assert.DoesNotContain("token=", page.Url); // the token went into the session, not the history
        await Assertions.Expect(page.Locator("#runs tbody tr[data-run='r1'] .state")).ToHaveTextAsync("healthy", new() { Timeout = 30_000 });
        await page.Locator("#runs tbody tr[data-run='r1'] a").ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync($"http://127.0.0.1:{silo.HttpPort}/runs/acme/r1");
        await Assertions.Expect(page.Locator($"#catalog tbody tr[data-name='{first}']")).ToBeVisibleAsync();

        await page.Locator("#checkpoint-now").ClickAsync();
        await Assertions.Expect(page.Locator("#request")).ToContainTextAsync("requested from the console");
        var second = (string)(await agent.Next("saved"))["name"]!;
        await Assertions.Expect(page.Locator($"#catalog tbody tr[data-name='{second}']")).ToBeVisibleAsync(Patiently);
        await Assertions.Expect(page.Locator("#catalog tbody tr")).ToHaveCountAsync(2);
        // Every committed checkpoint is a point of each save chart; heartbeats give the loss and iteration charts theirs.
        foreach (var chart in new[] { "chart-save", "chart-throughput", "chart-stall" })
            await Assertions.Expect(page.Locator($"#{chart}")).ToHaveAttributeAsync("data-points", "2", new() { Timeout = 10_000 });
        await Assertions.Expect(page.Locator("#chart-save .u-legend")).ToContainTextAsync("save, first Begin to commit (s)");
        await Assertions.Expect(page.Locator("#chart-loss canvas").First).ToBeVisibleAsync(Patiently);
        Assert.True(int.Parse((await page.Locator("#chart-loss").GetAttributeAsync("data-points"))!) >= 1);
        await Assertions.Expect(page.Locator("#run-loss")).Not.ToHaveTextAsync("–");
        await ConsoleBrowser.ScreenshotAsync(page, "console-run.png");

        // The deep link in a new tab opens the same run; another tenant's token gets 403 there and sees nothing of it.
        var linked = await browser.OpenAsync(silo, "/runs/acme/r1", silo.Token("acme"));
        await Assertions.Expect(linked.Locator("#run-name")).ToHaveTextAsync("acme/r1");
        await Assertions.Expect(linked).ToHaveURLAsync($"http://127.0.0.1:{silo.HttpPort}/runs/acme/r1");
        var other = await browser.OpenAsync(silo, "/runs/acme/r1", silo.Token("globex"));
        await Assertions.Expect(other.Locator("#error")).ToContainTextAsync("Forbidden");
        await Assertions.Expect(other.Locator("#run-view")).ToBeHiddenAsync();
        Assert.Equal("", await other.Locator("#catalog tbody").InnerTextAsync());
        var missing = await browser.OpenAsync(silo, "/runs/acme/nope", silo.Token("acme"));
        await Assertions.Expect(missing.Locator("#error")).ToContainTextAsync("does not exist");
    }

    [Fact]
    public async Task A_SIGKILLed_rank_turns_the_run_to_rank_missing_naming_the_rank_in_the_console_the_API_the_CLI_and_the_metrics()
    {
        await using var silo = await TestSilo.StartAsync();
        var cluster = silo.ClusterArgs("acme");
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess(["run", "create", "acme/pair", "--period", "5", "--max-iter", "1000000", "--max-to-keep", "3", .. cluster])).ExitCode);
        var epoch = (long)(await CliRunner.Ckpt.InProcess(["run", "attempt", "acme/pair", "--json", .. cluster])).Json["epoch"]!;
        string[] pace = ["--step-delay-ms", "100", "--heartbeat-ms", "1000"];
        await using var rank0 = AgentProcess.Start(epoch, silo.Azurite.ConnectionString, cluster, run: "acme/pair", rank: 0, worldSize: 2, options: pace);
        await using var rank1 = AgentProcess.Start(epoch, silo.Azurite.ConnectionString, cluster, run: "acme/pair", rank: 1, worldSize: 2, options: pace);
        await Task.WhenAll(rank0.Next("saved"), rank1.Next("saved"));
        await using var browser = await ConsoleBrowser.LaunchAsync();
        var page = await browser.OpenAsync(silo, "/runs/acme/pair", silo.Token("acme"));
        await Assertions.Expect(page.Locator("#run-state")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("healthy|checkpointing"), new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#missing")).ToBeHiddenAsync();

        rank1.Kill();
        var killed = Stopwatch.StartNew();
        // Documented: a rank is missing once silent for Runs:RankMissingAfter (15 s) after its last heartbeat; the page refreshes every 2 s.
        await Assertions.Expect(page.Locator("#run-state")).ToHaveTextAsync("rank missing", new() { Timeout = 30_000 });
        output.WriteLine($"rank 1 SIGKILLed; the console said 'rank missing' {killed.Elapsed.TotalSeconds:F1} s later (limit 15 s after its last heartbeat, heartbeat every 1 s, page refresh 2 s)");
        await Assertions.Expect(page.Locator("#missing")).ToContainTextAsync("rank 1");
        await Assertions.Expect(page.Locator("#pending tbody")).ToContainTextAsync("rank 1", new() { Timeout = 30_000 }); // rank 0 waits in its next save
        await ConsoleBrowser.ScreenshotAsync(page, "console-rank-missing.png");

        var show = await CliRunner.Ckpt.InProcess(["run", "show", "acme/pair", .. cluster]);
        Assert.Contains("health: rank_missing (rank 1 silent since", show.Out);
        Assert.Matches(@"\(pending\) model_\d+: 1 of 2 ranks reported; waiting for rank 1; begun", show.Out);
        var json = (await CliRunner.Ckpt.InProcess(["run", "show", "acme/pair", "--json", .. cluster])).Json;
        Assert.Equal("rank_missing", (string)json["health"]!["state"]!);
        Assert.Equal([1], json["health"]!["missing_ranks"]!.AsArray().Select(m => (int)m!["rank"]!));
        var listed = await CliRunner.Ckpt.InProcess(["run", "ls", "acme", .. cluster]);
        Assert.Matches(@"acme/pair\s+rank_missing", listed.Out);

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{silo.HttpPort}") };
        http.DefaultRequestHeaders.Authorization = new("Bearer", silo.Token("acme"));
        var api = JsonNode.Parse(await http.GetStringAsync("/api/v1/runs/acme/pair"))!;
        Assert.Equal("rank_missing", (string)api["health"]!["state"]!);
        Assert.Equal(1, (int)api["health"]!["missing_ranks"]![0]!["rank"]!);
        var metrics = await http.GetStringAsync("/metrics");
        Assert.Matches(@"(?m)^ckpt_runs\{[^}]*state=""rank_missing""[^}]*\} 1\b", metrics);
        Assert.Matches(@"(?m)^ckpt_run_heartbeat_age_seconds\{[^}]*run=""pair""", metrics);
    }

    [Fact]
    public async Task A_tenant_of_a_thousand_runs_opens_a_page_at_a_time_and_the_operator_sees_every_tenant()
    {
        await using var silo = await TestSilo.StartAsync();
        await using (var connection = await ClusterConnection.ConnectAsync(new ClusterConnectionOptions
        {
            Gateways = [$"127.0.0.1:{silo.GatewayPort}"], TenantToken = silo.Token("fleet"),
        }))
        {
            var creating = Stopwatch.StartNew();
            await Parallel.ForEachAsync(Enumerable.Range(0, 1000), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
                await connection.Client.GetGrain<ITrainingRunGrain>($"fleet/run{i:D4}").Create(new Abstractions.PeriodicPolicy(100)));
            output.WriteLine($"1,000 runs created in {creating.Elapsed.TotalSeconds:F1} s");
        }
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess(["run", "create", "acme/solo", .. silo.ClusterArgs("acme")])).ExitCode);
        await using var browser = await ConsoleBrowser.LaunchAsync();

        // Cold: no run grain active yet, so the page's 50 run grains activate (reading their state from Azurite); then warm.
        foreach (var pass in new[] { "cold", "warm" })
        {
            var loading = Stopwatch.StartNew();
            var page = await browser.OpenAsync(silo, "/tenants/fleet", silo.Token("fleet"));
            await Assertions.Expect(page.Locator("#page")).ToHaveTextAsync("runs 1–50 of 1,000", new() { Timeout = 30_000 });
            await Assertions.Expect(page.Locator("#runs tbody tr")).ToHaveCountAsync(50);
            output.WriteLine($"tenant page with 1,000 runs, {pass}: {loading.ElapsedMilliseconds} ms from navigation to its first 50 runs shown");
            if (pass == "warm")
            {
                await Assertions.Expect(page.Locator("#runs tbody tr[data-run='run0000'] .state")).ToHaveTextAsync("waiting");
                await page.Locator("#next").ClickAsync();
                await Assertions.Expect(page.Locator("#page")).ToHaveTextAsync("runs 51–100 of 1,000");
                await Assertions.Expect(page.Locator("#runs tbody tr").First).ToHaveAttributeAsync("data-run", "run0050");
                await ConsoleBrowser.ScreenshotAsync(page, "console-tenant.png");
            }
        }

        var operatorPage = await browser.OpenAsync(silo, "/", silo.Token("*"));
        await Assertions.Expect(operatorPage.Locator("#tenants tbody tr[data-tenant='fleet'] td.num")).ToHaveTextAsync("1,000", new() { Timeout = 30_000 });
        await Assertions.Expect(operatorPage.Locator("#tenants tbody tr[data-tenant='acme']")).ToBeVisibleAsync();
        await operatorPage.Locator("#tenants tbody tr[data-tenant='acme'] a").ClickAsync();
        await Assertions.Expect(operatorPage).ToHaveURLAsync($"http://127.0.0.1:{silo.HttpPort}/tenants/acme");
        await Assertions.Expect(operatorPage.Locator("#runs tbody tr[data-run='solo']")).ToBeVisibleAsync();
        var tenantOnly = await browser.OpenAsync(silo, "/", silo.Token("acme"));
        await Assertions.Expect(tenantOnly).ToHaveURLAsync($"http://127.0.0.1:{silo.HttpPort}/"); // a tenant lands on its own runs, not the list of tenants
        await Assertions.Expect(tenantOnly.Locator("#tenant-name")).ToHaveTextAsync("acme");
    }
}
