using System.Diagnostics;

namespace Checkpointing.Tests.Shared;

/// <summary>
/// Runs tests/Shared/Python/interop.py with Debian's /usr/bin/python3 (the one with torch and numpy).
/// A missing interpreter or package fails the test: these tests are never skipped.
/// </summary>
internal static class PythonScripts
{
    private const string Interpreter = "/usr/bin/python3";
    private const string Setup = "run scripts/bootstrap.sh, which installs Debian's python3-torch and python3-numpy";
    private static readonly string Script = Path.Combine(AppContext.BaseDirectory, "Python", "interop.py");

    /// <summary>Runs <c>interop.py COMMAND ARGS...</c> and returns its standard output.</summary>
    public static string Run(string command, params string[] arguments)
    {
        if (!File.Exists(Interpreter)) Assert.Fail($"{Interpreter} is missing: {Setup}.");
        var start = new ProcessStartInfo(Interpreter) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Script);
        start.ArgumentList.Add(command);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"interop.py {command} did not finish within 2 minutes.");
        }
        if (process.ExitCode != 0)
        {
            var error = stderr.Result;
            Assert.Fail(error.Contains("ModuleNotFoundError", StringComparison.Ordinal)
                ? $"{Interpreter} lacks torch or numpy: {Setup}.\n{error}"
                : $"interop.py {command} exited with {process.ExitCode}:\n{error}");
        }
        return stdout.Result;
    }
}
