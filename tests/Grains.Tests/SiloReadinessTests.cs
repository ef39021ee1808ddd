using Checkpointing.TestSupport;

namespace Checkpointing.Grains.Tests;

/// <summary>A real silo process against a real Azurite: /readyz follows the storage, /healthz stays live.</summary>
public sealed class SiloReadinessTests
{
    [Fact]
    public async Task Readiness_answers_503_naming_storage_while_it_is_down_and_recovers_when_it_is_back()
    {
        var azurite = await RepoPaths.StartAzurite();
        try
        {
            await using var silo = await SiloProcess.StartAsync($"ready-{Guid.NewGuid():N}", azurite.ConnectionString, TestTenancy.SigningKey, mode: "Dev");
            Assert.Contains("\"ready\"", await silo.WaitForAsync("/readyz", 200));

            await azurite.StopAsync();
            var down = await silo.WaitForAsync("/readyz", 503);
            Assert.Contains("storage unreachable: blob service", down);
            Assert.Contains($"127.0.0.1:{azurite.BlobPort}", down);
            Assert.DoesNotContain('\n', down);
            Assert.Equal(200, (await silo.ProbeAsync("/healthz")).Status);

            azurite = await azurite.RestartAsync(RepoPaths.Root);
            Assert.Contains("\"ready\"", await silo.WaitForAsync("/readyz", 200));
        }
        finally
        {
            await azurite.DisposeAsync();
        }
    }
}
