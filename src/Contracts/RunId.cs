namespace Checkpointing.Contracts;

/// <summary>A training run, "tenant/run": the key of its grain and the root of its blobs.</summary>
[GenerateSerializer, Immutable]
public sealed record RunId([property: Id(0)] string Tenant, [property: Id(1)] string Run)
{
    public string Key => $"{Tenant}/{Run}";

    /// <summary>Where the run's checkpoints live in a store: per tenant, per run.</summary>
    public string StorePrefix => StoreLayout.RunPrefix(Tenant, Run);

    public static RunId Parse(string key)
    {
        var parts = key.Split('/');
        if (parts.Length != 2) throw new ArgumentException($"Run key '{key}' must be 'tenant/run'.", nameof(key));
        return new RunId(CheckpointName.Validate(parts[0], "tenant name"), CheckpointName.Validate(parts[1], "run name"));
    }

    public override string ToString() => Key;
}
