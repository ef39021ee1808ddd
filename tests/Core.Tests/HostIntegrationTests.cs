using Checkpointing.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace Checkpointing.Core.Tests;

/// <summary>The core library on the generic host: settings bound from configuration, validated at start, logging through the host.</summary>
public sealed class HostIntegrationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-host-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static IHost Build(Dictionary<string, string?> settings, LogLines? logs = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        if (logs is not null) builder.Logging.AddProvider(logs);
        builder.Services.AddCheckpointing(builder.Configuration.GetSection(CheckpointingOptions.Section));
        return builder.Build();
    }

    [Fact]
    public async Task The_factory_saves_into_the_configured_folder_with_the_configured_policy_and_logs_through_the_host()
    {
        var logs = new LogLines();
        using var host = Build(new()
        {
            ["Checkpointing:SaveDir"] = _dir,
            ["Checkpointing:Period"] = "2",
            ["Checkpointing:MaxIter"] = "8",
            ["Checkpointing:MaxToKeep"] = "1",
            ["Checkpointing:FilePrefix"] = "net",
        }, logs);
        await host.StartAsync();

        var factory = host.Services.GetRequiredService<CheckpointerFactory>();
        var model = nn.Linear(4, 2);
        var periodic = factory.CreatePeriodic(factory.Create(model));
        for (long iteration = 0; iteration < 8; iteration++) await periodic.StepAsync(iteration);

        var folders = Directory.GetDirectories(_dir).Select(Path.GetFileName).Order().ToList();
        Assert.Equal(["net_0000007", "net_final"], folders); // saves at 1, 3, 5, 7 (period 2), max_to_keep 1, and "{prefix}_final" at max_iter - 1
        Assert.Equal("net_final", File.ReadAllText(Path.Combine(_dir, "last_checkpoint")).Trim());
        Assert.Contains(logs.Lines, line => line.Category == typeof(Checkpointer).FullName && line.Message.StartsWith("Saving checkpoint to ", StringComparison.Ordinal));
        await host.StopAsync();
    }

    [Fact]
    public async Task A_host_with_invalid_settings_does_not_start_and_names_every_bad_key()
    {
        using var host = Build(new()
        {
            ["Checkpointing:Period"] = "0",
            ["Checkpointing:MaxToKeep"] = "0",
            ["Checkpointing:Format"] = "Pth",
            ["Checkpointing:Incremental"] = "true",
        });

        var refused = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Checkpointing:SaveDir is required", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Checkpointing:Period must be at least 1, not 0.", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Checkpointing:MaxToKeep must be at least 1", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Checkpointing:Incremental needs Format Native.", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Settings_given_in_code_are_validated_and_used_as_well()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddCheckpointing(options =>
        {
            options.SaveDir = _dir;
            options.Format = CheckpointFormat.Pth;
        });
        using var host = builder.Build();
        await host.StartAsync();

        var checkpointer = host.Services.GetRequiredService<CheckpointerFactory>().Create(nn.Linear(3, 3));
        await checkpointer.SaveAsync("first");

        Assert.True(File.Exists(Path.Combine(_dir, "first.pth")));
        await host.StopAsync();
    }

    /// <summary>Every log line the host's loggers receive, with its category.</summary>
    private sealed class LogLines : ILoggerProvider
    {
        private readonly List<(string Category, string Message)> _lines = [];

        public IReadOnlyList<(string Category, string Message)> Lines { get { lock (_lines) return [.. _lines]; } }

        public ILogger CreateLogger(string categoryName) => new CategoryLogger(this, categoryName);

        public void Dispose() { }

        private sealed class CategoryLogger(LogLines owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                lock (owner._lines) owner._lines.Add((category, formatter(state, exception)));
            }
        }
    }
}
