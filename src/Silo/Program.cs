using Checkpointing.Silo;

// Configuration: appsettings.json, then CKPT_-prefixed environment variables (CKPT_Silo__SiloPort=11112),
// then command-line arguments (--Silo:SiloPort=11112).
var app = SiloHost.Build(args);
await app.RunAsync();
