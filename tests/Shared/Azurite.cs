using Checkpointing.Processes;

namespace Checkpointing.TestSupport;

public static class RepoPaths
{
    /// <summary>The repository root: the folder holding Checkpointing.slnx above the test binaries.</summary>
    public static string Root
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Checkpointing.slnx"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("repository root (Checkpointing.slnx) not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>Starts this repository's pinned Azurite.</summary>
    public static Task<Azurite> StartAzurite() => Azurite.StartAsync(Root);
}
