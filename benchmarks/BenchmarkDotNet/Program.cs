using BenchmarkDotNet.Running;

// Micro-benchmarks (e.g. --filter '*LocalSaveLoad*'). The end-to-end table of ratios against the
// machine's own references is `ckpt-bench io` (scripts/bench.sh).
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
