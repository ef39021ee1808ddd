namespace Checkpointing.Contracts;

/// <summary>A training run, "tenant/run": the key of its grain and the root of its blobs.</summary>
[GenerateSerializer, Immutable]
public sealed record RunId([property: Id(0)] string Tenant, [property: Id(1)] string Run)
{
    /// <summary>"tenant/run": the key of the run's grain, and how <c>ckpt</c> names the run (TENANT/RUN).</summary>
    public string Key => $"{Tenant}/{Run}";

    /// <summary>Where the run's checkpoints live in a store: per tenant, per run.</summary>
    public string StorePrefix => StoreLayout.RunPrefix(Tenant, Run);

    /// <summary>The run named by <paramref name="key"/> ("tenant/run").</summary>
    /// <exception cref="ArgumentException"><paramref name="key"/> is not "tenant/run" with two valid names; the message says why (<see cref="Problem"/>).</exception>
    public static RunId Parse(string key) =>
        Problem(key) is { } problem ? throw new ArgumentException(problem + ".", nameof(key)) : new RunId(key[..key.IndexOf('/')], key[(key.IndexOf('/') + 1)..]);

    /// <summary>Why <paramref name="key"/> is not a run key "tenant/run", or null when it is one.</summary>
    public static string? Problem(string key)
    {
        var parts = key.Split('/');
        if (parts.Length != 2) return $"Run key '{key}' must be 'tenant/run'";
        if (CheckpointName.Problem(parts[0]) is { } tenant) return $"Invalid tenant name '{parts[0]}': {tenant}";
        return CheckpointName.Problem(parts[1]) is { } run ? $"Invalid run name '{parts[1]}': {run}" : null;
    }

    /// <summary>The <see cref="Key"/>, "tenant/run".</summary>
    public override string ToString() => Key;
}
