using BenchmarkDotNet.Running;
using Checkpointing.Benchmarks;

// `table [--size-mib N]` runs the end-to-end comparisons and prints one table of ratios (scripts/bench.sh);
// anything else goes to BenchmarkDotNet (e.g. --filter '*LocalSaveLoad*').
if (args.FirstOrDefault() == "table")
{
    var sizeMiB = args.SkipWhile(a => a != "--size-mib").Skip(1).Select(int.Parse).FirstOrDefault(1024);
    return await TableBenchmarks.RunAsync(sizeMiB, Console.Out);
}
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
