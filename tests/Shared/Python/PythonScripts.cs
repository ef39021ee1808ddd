using Checkpointing.TestSupport;

namespace Checkpointing.Tests.Shared;

/// <summary>Runs <c>tests/Shared/Python/interop.py COMMAND ARGS...</c> with Debian's /usr/bin/python3.</summary>
internal static class PythonScripts
{
    private static readonly string Script = Path.Combine(AppContext.BaseDirectory, "Python", "interop.py");

    public static string Run(string command, params string[] arguments) => PythonTorch.Run(Script, [command, .. arguments]);
}
