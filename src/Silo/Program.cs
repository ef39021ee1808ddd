using Checkpointing.Silo;

// Configuration: appsettings.json, then CKPT_-prefixed environment variables (CKPT_Silo__SiloPort=11112),
// then command-line arguments (--Silo:SiloPort=11112).
try
{
    var app = SiloHost.Build(args);
    await app.RunAsync();
    return 0;
}
catch (InvalidSiloConfigurationException e)
{
    await Console.Error.WriteLineAsync($"silo: invalid configuration: {e.Message}");
    return 1;
}
catch (Exception e)
{
    // A port already taken, storage refusing at start, …: exit 1 with one closing line, not an abort (134) with the unhandled exception's trace.
    await Console.Error.WriteLineAsync($"silo: could not run: {e.GetType().Name}: {string.Join(' ', e.Message.Split('\n', StringSplitOptions.TrimEntries))}");
    return 1;
}
