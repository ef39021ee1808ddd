namespace Checkpointing.Grains;

/// <summary>Names of the grain storage providers the silo must register.</summary>
public static class GrainStorage
{
    public const string Runs = "runs";
    public const string Tenants = "tenants";
}
