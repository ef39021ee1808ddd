namespace Checkpointing.Lab.Chaos;

/// <summary>A machine of the lab: a network namespace with one address on the lab's bridge.</summary>
/// <param name="Veth">The bridge-side end of the host's link (what a partition takes down).</param>
public sealed record LabHost(string Name, string Namespace, string Address, string Veth)
{
    /// <summary>Prefix of a command line that runs the command on this host.</summary>
    public IReadOnlyList<string> Launcher => ["ip", "netns", "exec", Namespace];
}
