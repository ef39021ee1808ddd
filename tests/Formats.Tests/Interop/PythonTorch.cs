using System.Diagnostics;

namespace Checkpointing.Formats.Tests.Interop;

/// <summary>
/// Runs the Python scripts under Interop/Scripts with Debian's /usr/bin/python3 (the one with torch
/// and numpy). A missing interpreter or package fails the test: these tests are never skipped.
/// </summary>
internal static class PythonTorch
{
    private const string Interpreter = "/usr/bin/python3";
    private const string Setup = "run scripts/bootstrap.sh, which installs Debian's python3-torch and python3-numpy";
    private static readonly string ScriptDirectory = Path.Combine(AppContext.BaseDirectory, "Interop", "Scripts");

    /// <summary>Runs <paramref name="script"/> and returns its standard output.</summary>
    public static string Run(string script, params string[] arguments)
    {
        if (!File.Exists(Interpreter)) Assert.Fail($"{Interpreter} is missing: {Setup}.");
        var start = new ProcessStartInfo(Interpreter)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = ScriptDirectory,
        };
        start.ArgumentList.Add(Path.Combine(ScriptDirectory, script));
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{script} did not finish within 2 minutes.");
        }
        if (process.ExitCode != 0)
        {
            var error = stderr.Result;
            Assert.Fail(error.Contains("ModuleNotFoundError", StringComparison.Ordinal)
                ? $"{Interpreter} lacks torch or numpy: {Setup}.\n{error}"
                : $"{script} exited with {process.ExitCode}:\n{error}");
        }
        return stdout.Result;
    }
}
