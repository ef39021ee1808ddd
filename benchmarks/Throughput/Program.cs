using Checkpointing.Benchmarks.Throughput;
using Checkpointing.Cli;
using Checkpointing.Core;

HugePages.EnableForLibTorch(); // before any tensor exists: libtorch reads it at its first allocation
return await CliApp.RunAsync(BenchTool.Definition, args, Console.Out, Console.Error);
