using Microsoft.Playwright;

namespace Tabula.Fleet.Tests.Support;

/// <summary>
/// Debian's Chromium (headless, driven by Playwright; no downloaded browser) on the dashboard, recording every console error,
/// uncaught exception and HTTP error answer of the page, so a test fails on any it did not expect (issue 18).
/// Without /usr/bin/chromium <see cref="StartAsync"/> gives null on a laptop and fails under CI.
/// </summary>
public sealed class DashboardBrowser : IAsyncDisposable
{
    public const string Chromium = "/usr/bin/chromium";

    /// <summary>Set to a folder to have <see cref="ScreenshotAsync"/> write PNGs there (scripts/dashboard-screenshots sets docs/).</summary>
    public const string ScreenshotsVariable = "TABULA_DASHBOARD_SCREENSHOTS";

    private readonly IPlaywright playwright;
    private readonly IBrowser browser;
    private readonly List<string> errors = [];
    private readonly List<(int Status, string Url)> failedResponses = [];

    public IPage Page { get; }

    private DashboardBrowser(IPlaywright playwright, IBrowser browser, IPage page)
    {
        this.playwright = playwright;
        this.browser = browser;
        Page = page;
        page.Console += (_, message) =>
        {
            // Chromium logs every HTTP error answer as "Failed to load resource"; those are judged by status below.
            if (message.Type == "error" && !message.Text.StartsWith("Failed to load resource", StringComparison.Ordinal))
                lock (errors) errors.Add("console: " + message.Text);
        };
        page.PageError += (_, error) => { lock (errors) errors.Add("uncaught: " + error); };
        page.Response += (_, response) =>
        {
            if (response.Status >= 400) lock (errors) failedResponses.Add((response.Status, new Uri(response.Url).PathAndQuery));
        };
    }

    public static async Task<DashboardBrowser?> StartAsync(Uri controller, int width = 1600, int height = 900)
    {
        if (!File.Exists(Chromium))
        {
            Assert.False(Prerequisites.IsCi, "Chromium is required under CI (scripts/apt-packages: chromium)");
            return null;
        }
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium, Headless = true,
            // The machine notes: without the background-networking flags Chromium keeps dialing out to a closed network.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync"],
        });
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = width, Height = height } });
        page.SetDefaultTimeout(15_000);
        var dashboard = new DashboardBrowser(playwright, browser, page);
        await page.GotoAsync(new Uri(controller, "/dashboard").ToString());
        return dashboard;
    }

    /// <summary>Logs in with a password and, when given, a TOTP code; waits for the live event stream.</summary>
    public async Task LogInAsync(string username, string password, string? totp = null)
    {
        await Page.FillAsync("#username", username);
        await Page.FillAsync("#password", password);
        await Page.FillAsync("#totp", totp ?? "");
        await Page.ClickAsync("#login-button");
        await Assertions.Expect(Page.Locator("#status")).ToHaveTextAsync("live");
    }

    public Task TabAsync(string view) => Page.ClickAsync($"#tabs button[data-view='{view}']");

    /// <summary>Answers the open action dialog: its fields, a reason, then confirm (twice for a destructive action).</summary>
    public async Task AnswerDialogAsync(string reason, IReadOnlyDictionary<string, string>? fields = null, bool destructive = false)
    {
        var dialog = Page.Locator("#action-dialog");
        await Assertions.Expect(dialog).ToBeVisibleAsync();
        foreach (var (name, value) in fields ?? new Dictionary<string, string>())
            await dialog.Locator($"#action-fields input[name='{name}']").FillAsync(value);
        await Page.FillAsync("#action-reason", reason);
        await Page.ClickAsync("#action-confirm");
        if (destructive)
        {
            await Assertions.Expect(Page.Locator("#action-dialog-error")).ToContainTextAsync("Click again to confirm");
            await Assertions.Expect(dialog).ToBeVisibleAsync();
            await Page.ClickAsync("#action-confirm");
        }
        await Assertions.Expect(dialog).ToBeHiddenAsync();
    }

    /// <summary>A PNG of the page as it is, into the folder <see cref="ScreenshotsVariable"/> names (if set).</summary>
    public async Task ScreenshotAsync(string name)
    {
        if (Environment.GetEnvironmentVariable(ScreenshotsVariable) is not { Length: > 0 } folder) return;
        Directory.CreateDirectory(folder);
        await Page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(folder, name + ".png"), FullPage = true });
    }

    /// <summary>
    /// Reloads /dashboard in a fresh page (cold: no cache) and reads Chromium's paint timings: first paint, first contentful
    /// paint and the load event, in ms from navigation start.
    /// </summary>
    public async Task<(double FirstPaint, double FirstContentfulPaint, double Load)> PaintTimesAsync(Uri controller)
    {
        await using var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(new Uri(controller, "/dashboard").ToString(), new PageGotoOptions { WaitUntil = WaitUntilState.Load });
        // The paint entries may be recorded a frame after the load event: wait for them (at most 5 s, then -1).
        var times = await page.EvaluateAsync<double[]>("""
            () => new Promise(resolve => {
              const until = performance.now() + 5000;
              const read = () => {
                const fp = performance.getEntriesByName("first-paint")[0], fcp = performance.getEntriesByName("first-contentful-paint")[0];
                if ((fp && fcp) || performance.now() > until)
                  resolve([fp?.startTime ?? -1, fcp?.startTime ?? -1, performance.getEntriesByType("navigation")[0].loadEventStart]);
                else requestAnimationFrame(read);
              };
              read();
            })
            """);
        return (times[0], times[1], times[2]);
    }

    /// <summary>
    /// Fails on any console error or uncaught exception, and on any HTTP error answer but the expected ones (status and path
    /// prefix, e.g. the refused login the test provoked).
    /// </summary>
    public void AssertNoErrors(params (int Status, string PathPrefix)[] expected)
    {
        lock (errors)
        {
            var unexpected = failedResponses.Where(f => !expected.Any(e => e.Status == f.Status && f.Url.StartsWith(e.PathPrefix, StringComparison.Ordinal)))
                .Select(f => $"HTTP {f.Status} {f.Url}");
            Assert.Empty(errors.Concat(unexpected));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await browser.DisposeAsync();
        playwright.Dispose();
    }
}
