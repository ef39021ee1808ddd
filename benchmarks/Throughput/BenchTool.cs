using Checkpointing.Cli;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary><c>ckpt-bench</c>: the data plane (<c>io</c>) and the control plane (<c>commits</c>) measured against references in the same run.</summary>
public static class BenchTool
{
    public static readonly CliTool Definition = new("ckpt-bench", "ckpt-bench — measure the data plane (io) or the control plane (commits) against this machine's own limits", context =>
    [
        IoBenchCommand.Build(context),
        CommitBenchCommand.Build(context),
    ]);
}
