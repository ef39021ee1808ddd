using Checkpointing.TestSupport;
namespace Checkpointing.Formats.Tests.Interop;

/// <summary>Every Python-made fixture, written once per test run by Scripts/make_fixtures.py into a temporary folder.</summary>
public sealed class InteropFixtures : IDisposable
{
    public InteropFixtures() => PythonTorch.Run(Path.Combine(AppContext.BaseDirectory, "Interop", "Scripts", "make_fixtures.py"), Directory);

    public string Directory { get; } = System.IO.Directory.CreateTempSubdirectory("interop-fixtures-").FullName;

    public string PathOf(string file) => Path.Combine(Directory, file);

    /// <summary>The summary of what Python loaded back from fixture <paramref name="name"/>.</summary>
    public string Expected(string name) => ValueSummary.Normalize(File.ReadAllText(PathOf(name + ".json")));

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}

[CollectionDefinition(Name)]
public sealed class InteropCollection : ICollectionFixture<InteropFixtures>
{
    public const string Name = "Python interop fixtures";
}
