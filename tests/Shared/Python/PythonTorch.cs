using System.Diagnostics;

namespace Checkpointing.TestSupport;

/// <summary>
/// Runs Python scripts with Debian's /usr/bin/python3 (the one with torch and numpy). A missing
/// interpreter or package fails the test: these tests are never skipped.
/// </summary>
public static class PythonTorch
{
    private const string Interpreter = "/usr/bin/python3";
    private const string Setup = "run scripts/bootstrap.sh, which installs Debian's python3-torch and python3-numpy";

    /// <summary>Runs the script at <paramref name="scriptPath"/> and returns its standard output.</summary>
    public static string Run(string scriptPath, params string[] arguments)
    {
        var script = Path.GetFileName(scriptPath);
        if (!File.Exists(Interpreter)) Assert.Fail($"{Interpreter} is missing: {Setup}.");
        var start = new ProcessStartInfo(Interpreter)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(scriptPath)!,
        };
        start.ArgumentList.Add(scriptPath);
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

    /// <summary>Runs Python source given inline (written to a temporary file first).</summary>
    public static string RunCode(string code, params string[] arguments)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("py-").FullName, "script.py");
        File.WriteAllText(path, code);
        try { return Run(path, arguments); }
        finally { Directory.Delete(Path.GetDirectoryName(path)!, recursive: true); }
    }
}
