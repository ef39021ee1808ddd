using System.Security.Cryptography;

namespace Checkpointing.Cli.Tests;

/// <summary>`ckpt token` and `ckpt run …` against a real silo process (dev mode) backed by Azurite.</summary>
[Collection(nameof(CliCollection))]
public sealed class RunCliTests
{
    [Fact]
    public async Task Run_commands_create_show_change_and_delete_a_run_through_a_silo()
    {
        await using var silo = await TestSilo.StartAsync();
        var (key, gateway) = (silo.SigningKey, silo.GatewayPort);

        var keyFile = Path.GetTempFileName();
        await File.WriteAllTextAsync(keyFile, key + "\n");
        var token = (await CliRunner.Ckpt.InProcess("token", "--key-file", keyFile, "--tenant", "acme")).Out.Trim();
        var operatorToken = (await CliRunner.Ckpt.InProcess("token", "--key-file", keyFile, "--tenant", "*")).Out.Trim();
        File.Delete(keyFile);
        string[] cluster = ["--silo", $"127.0.0.1:{gateway}", "--token", token];

        var created = await CliRunner.Ckpt.InProcess(["run", "create", "acme/r1", "--period", "5", "--max-iter", "100", "--max-to-keep", "2", "--json", .. cluster]);
        Assert.True(created.ExitCode == 0, created.Error);
        Assert.Equal(5, (long)created.Json["policy"]!["period"]!);
        Assert.Equal(2, (long)created.Json["policy"]!["max_to_keep"]!);

        var policy = await CliRunner.Ckpt.InProcess(["run", "policy", "acme/r1", "--period", "7", "--json", .. cluster]);
        Assert.Equal(7, (long)policy.Json["policy"]!["period"]!);
        Assert.Equal(100, (long)policy.Json["policy"]!["max_iter"]!);

        var attempt = await CliRunner.Ckpt.InProcess(["run", "attempt", "acme/r1", "--json", .. cluster]);
        Assert.Equal(1, (long)attempt.Json["epoch"]!);
        await CliRunner.Ckpt.InProcess(["run", "checkpoint-now", "acme/r1", "--reason", "maintenance", .. cluster]);
        var shown = await CliRunner.Ckpt.InProcess(["run", "show", "acme/r1", "--json", .. cluster]);
        Assert.Equal("maintenance", (string)shown.Json["checkpoint_request"]!);
        Assert.Empty(shown.Json["checkpoints"]!.AsArray());

        var listed = await CliRunner.Ckpt.InProcess(["run", "ls", "acme", "--json", .. cluster]);
        Assert.Equal(["r1"], listed.Json["runs"]!.AsArray().Select(r => (string)r!["run"]!));

        var denied = await CliRunner.Ckpt.InProcess(["run", "show", "other/r1", .. cluster]);
        Assert.Equal(1, denied.ExitCode);
        Assert.Contains("the credential is for tenant 'acme'", denied.Error);
        var asOperator = await CliRunner.Ckpt.InProcess("run", "show", "acme/r1", "--json", "--silo", $"127.0.0.1:{gateway}", "--token", operatorToken);
        Assert.Equal("acme/r1", (string)asOperator.Json["run"]!);

        Assert.Equal(0, (await CliRunner.Ckpt.InProcess(["run", "delete", "acme/r1", .. cluster])).ExitCode);
        var gone = await CliRunner.Ckpt.InProcess(["run", "show", "acme/r1", .. cluster]);
        Assert.Equal(1, gone.ExitCode);
        Assert.Contains("does not exist", gone.Error);
    }

    [Fact]
    public async Task Token_refuses_a_key_on_the_command_line_and_reads_it_from_env_or_a_file()
    {
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var refused = await CliRunner.Ckpt.InProcess("token", "--key", key, "--tenant", "acme");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--key is refused", refused.Error);
        Assert.Contains("CKPT_SIGNING_KEY", refused.Error);
        Assert.DoesNotContain("v1.", refused.Out);

        var fromEnv = await CliRunner.Ckpt.OutOfProcessWithEnvironment(TimeSpan.FromMinutes(1), new() { ["CKPT_SIGNING_KEY"] = key }, ["token", "--tenant", "a.b"]);
        Assert.True(fromEnv.ExitCode == 0, fromEnv.Error);
        Assert.Equal(("a.b", null), Contracts.TenantTokens.Validate(Convert.FromBase64String(key), fromEnv.Out.Trim(), DateTimeOffset.UtcNow));

        var missing = await CliRunner.Ckpt.InProcess("token", "--tenant", "acme", "--key-file", "/nonexistent/signing.key");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("/nonexistent/signing.key", missing.Error);

        var shortKeyFile = Path.GetTempFileName();
        await File.WriteAllTextAsync(shortKeyFile, Convert.ToBase64String(new byte[16]));
        var tooShort = await CliRunner.Ckpt.InProcess("token", "--tenant", "acme", "--key-file", shortKeyFile);
        File.Delete(shortKeyFile);
        Assert.Equal(2, tooShort.ExitCode);
        Assert.Contains("at least 32", tooShort.Error);
    }
}
