using Checkpointing.Cli;

namespace Checkpointing.Lab;

/// <summary>Finds the repository a lab or benchmark tool was built in, and the other projects' builds beside it.</summary>
public static class RepositoryBuilds
{
    /// <summary>The repository this tool was built in (its node_modules holds Azurite).</summary>
    public static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Checkpointing.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new UsageException("run ckpt-lab or ckpt-bench from a build inside the repository, or pass --repo DIR");
    }

    /// <summary>A product project's build output (under src/) in the same configuration as this tool (Debug or Release).</summary>
    public static string Sibling(string repo, string project, string dll)
    {
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var path = Path.Combine(repo, "src", project, "bin", here.Parent!.Parent!.Name, here.Parent.Name, here.Name, dll);
        return File.Exists(path) ? path : throw new UsageException($"{dll} is not built at {path}: run `dotnet build src/{project} -c {here.Parent.Parent.Name}` or pass --silo-dll");
    }
}
