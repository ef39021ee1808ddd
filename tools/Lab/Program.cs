using Checkpointing.Cli;
using Checkpointing.Core;
using Checkpointing.Lab;

HugePages.EnableForLibTorch(); // before any tensor exists: libtorch reads it at its first allocation
return await CliApp.RunAsync(LabTool.Definition, args, Console.Out, Console.Error);
