using Microsoft.Playwright;

namespace Checkpointing.Cli.Tests;

/// <summary>Debian's chromium driven by Playwright (headless; Playwright's own browser download is not reachable), and where screenshots go.</summary>
public sealed class ConsoleBrowser : IAsyncDisposable
{
    private const string Chromium = "/usr/bin/chromium";
    public static readonly string Screenshots = Path.Combine(TestSilo.RepoRoot, "artifacts", "screenshots");
    private readonly IPlaywright _playwright;

    private ConsoleBrowser(IPlaywright playwright, IBrowser browser) => (_playwright, Browser) = (playwright, browser);

    public IBrowser Browser { get; }

    public static async Task<ConsoleBrowser> LaunchAsync()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: the console tests need Debian's chromium (scripts/bootstrap.sh installs it: apt-get install chromium)");
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox"] });
        return new ConsoleBrowser(playwright, browser);
    }

    /// <summary>A new tab (its own session storage, so its own token) at <paramref name="path"/> of the silo with <paramref name="token"/>.</summary>
    public async Task<IPage> OpenAsync(TestSilo silo, string path, string token)
    {
        var page = await Browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        await page.GotoAsync($"http://127.0.0.1:{silo.HttpPort}{path}?token={Uri.EscapeDataString(token)}");
        return page;
    }

    public static async Task ScreenshotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(Screenshots);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Screenshots, name), FullPage = true });
    }

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
    }
}
