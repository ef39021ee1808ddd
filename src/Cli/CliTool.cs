using System.CommandLine;

namespace Checkpointing.Cli;

/// <summary>A command-line tool that <see cref="CliApp"/> runs: its name, its commands and what its help and failures add.</summary>
/// <param name="Name">The executable's name, as help and one-line failures print it.</param>
/// <param name="Description">What the tool is, as its root help describes it.</param>
/// <param name="Commands">Builds the tool's commands, their actions writing through the given context.</param>
/// <param name="EventStreamCommand">A command whose stdout is a stream of JSON events: its failure is always one JSON event.</param>
/// <param name="ExtraExitCodes">Exit codes beyond 0, 1 and 2, as ", 3 what" (appended to the help's list).</param>
public sealed record CliTool(string Name, string Description, Func<CliContext, IReadOnlyList<Command>> Commands, string? EventStreamCommand = null, string ExtraExitCodes = "");
