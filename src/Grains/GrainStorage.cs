namespace Checkpointing.Grains;

/// <summary>Names of the grain storage providers the silo must register.</summary>
public static class GrainStorage
{
    /// <summary>Holds each run grain's states: the run's, its history and its catalog archive.</summary>
    public const string Runs = "runs";
    /// <summary>Holds each tenant grain's state: its limits, registered runs and grants.</summary>
    public const string Tenants = "tenants";
}
