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
