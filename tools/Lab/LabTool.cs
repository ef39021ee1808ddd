using Checkpointing.Cli;
using Checkpointing.Lab.Chaos;

namespace Checkpointing.Lab;

/// <summary><c>ckpt-lab</c>: demo trainings, the main job on one machine, its training agents and the chaos lab.</summary>
public static class LabTool
{
    public static readonly CliTool Definition = new("ckpt-lab", "ckpt-lab — the lab around ckpt: demo trainings, the main job on one machine, chaos", context =>
    [
        DemoCommand.Build(context),
        JobCommand.Build(context),
        AgentCommand.Build(context),
        ChaosCommand.Build(context),
    ], EventStreamCommand: "agent", ExtraExitCodes: $", {DemoCommand.CrashExitCode} simulated crash (ckpt-lab demo --stop-at)");
}
