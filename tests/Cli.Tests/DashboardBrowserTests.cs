using Microsoft.Playwright;

namespace Checkpointing.Cli.Tests;

/// <summary>
/// The silo's dashboard in a real browser (Debian's chromium driven by Playwright, headless): with a tenant token
/// it shows a run's catalog after a real agent committed, and its "Checkpoint now" button makes the agent save
/// the next checkpoint, which appears. Screenshots go to artifacts/screenshots.
/// </summary>
[Collection(nameof(CliCollection))]
public sealed class DashboardBrowserTests
{
    private const string Chromium = "/usr/bin/chromium";
    private static readonly string Screenshots = Path.Combine(TestSilo.RepoRoot, "artifacts", "screenshots");

    [Fact]
    public async Task A_tenant_sees_the_catalog_after_an_agent_commits_and_checkpoint_now_adds_the_next_checkpoint()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: the dashboard tests need Debian's chromium (scripts/bootstrap.sh installs it: apt-get install chromium)");
        await using var silo = await TestSilo.StartAsync();
        var cluster = silo.ClusterArgs("acme");
        // No periodic saves: each checkpoint is asked for, so the test knows which ones exist.
        var created = await CliRunner.Ckpt.InProcess(["run", "create", "acme/r1", "--period", "1000000", "--max-iter", "1000000", .. cluster]);
        Assert.True(created.ExitCode == 0, created.Error);
        var epoch = (long)(await CliRunner.Ckpt.InProcess(["run", "attempt", "acme/r1", "--json", .. cluster])).Json["epoch"]!;
        await using var agent = AgentProcess.Start(epoch, silo.Azurite.ConnectionString, cluster);
        await agent.Next("start");
        await CliRunner.Ckpt.InProcess(["run", "checkpoint-now", "acme/r1", .. cluster]);
        var first = (string)(await agent.Next("saved"))["name"]!;

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox"] });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1000, Height = 800 } });
        await page.GotoAsync($"http://127.0.0.1:{silo.HttpPort}/?token={Uri.EscapeDataString(silo.Token("acme"))}");

        Assert.DoesNotContain("token=", page.Url); // the token went into the session, not the history
        await Assertions.Expect(page.Locator("#tenant")).ToHaveValueAsync("acme");
        await page.Locator("#runs tbody tr[data-run='r1']").ClickAsync();
        await Assertions.Expect(page.Locator($"#catalog tbody tr[data-name='{first}']")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#run-summary")).ToContainTextAsync($"last checkpoint {first}");
        Directory.CreateDirectory(Screenshots);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, "dashboard-run.png"), FullPage = true });

        await page.Locator("#checkpoint-now").ClickAsync();
        await Assertions.Expect(page.Locator("#request")).ToContainTextAsync("requested from the dashboard");
        var second = (string)(await agent.Next("saved"))["name"]!;
        await Assertions.Expect(page.Locator($"#catalog tbody tr[data-name='{second}']")).ToBeVisibleAsync(new LocatorAssertionsToBeVisibleOptions { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#catalog tbody tr")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#chart rect")).ToHaveCountAsync(2);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, "dashboard-after-checkpoint-now.png"), FullPage = true });

        // Another tenant's token sees an error, not acme's runs.
        var other = await browser.NewPageAsync();
        await other.GotoAsync($"http://127.0.0.1:{silo.HttpPort}/?token={Uri.EscapeDataString(silo.Token("globex"))}");
        await other.Locator("#tenant").FillAsync("acme");
        await other.Locator("#sign-in button").ClickAsync();
        await Assertions.Expect(other.Locator("#error")).ToContainTextAsync("Forbidden");
        await Assertions.Expect(other.Locator("#runs tbody tr")).ToHaveCountAsync(0);
    }
}
