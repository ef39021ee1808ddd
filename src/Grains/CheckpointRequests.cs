using System.Security.Cryptography;
using Checkpointing.Contracts;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Grains;

/// <summary>
/// An operator's request that a run checkpoint now (e.g. a preemption notice): recorded by the run grain, turned into an
/// iteration by the first agent step that sees it, so that every rank saves at the same iteration, and cleared by the
/// first commit begun after it.
/// </summary>
internal static class CheckpointRequests
{
    /// <summary>Ranks of a data-parallel job are at most a step apart: two steps of margin let all of them see it in time.</summary>
    public const int StepsOfMargin = 2;

    public static CheckpointRequest New(string reason, DateTimeOffset now)
    {
        RequestBounds.Reason(reason);
        return new CheckpointRequest(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)), reason, now);
    }

    /// <summary>Whether the state's request still waits for an iteration (a change that needs the exclusive section and a write).</summary>
    public static bool NeedsIteration(RunState state) => state.CheckpointRequest is { SaveAtIteration: null };

    /// <summary>Fixes the iteration of a request that has none, from the step of the agent that saw it first; true when the state changed.</summary>
    public static bool FixIteration(RunState state, long iteration)
    {
        if (state.CheckpointRequest is not { SaveAtIteration: null } request) return false;
        state.CheckpointRequest = request with { SaveAtIteration = iteration + StepsOfMargin };
        return true;
    }

    /// <summary>
    /// Records a checkpoint-now request durably (the iteration it is saved at is fixed by the first rank's next step).
    /// The time is taken inside the exclusive section: a commit clears only requests made before its checkpoint began.
    /// </summary>
    public static Task RequestAsync(IRunShell shell, IPersistentState<RunState> state, string reason, TimeProvider time, ILogger logger, RunId run) => shell.Exclusive(async () =>
    {
        var request = New(reason, time.GetUtcNow());
        shell.EnsureCreated();
        state.State.CheckpointRequest = request;
        await shell.WriteOrReloadAsync();
        logger.LogInformation("Run {Run}: checkpoint requested ({Reason})", run, reason);
        return true;
    });

    /// <summary>
    /// A rank's step directive: the policy and any checkpoint-now request. Every step of every rank asks, so it takes the
    /// exclusive section only for the first step after a request, to fix the iteration every rank will save at.
    /// </summary>
    public static Task<StepDirective> DirectiveAsync(IRunShell shell, IPersistentState<RunState> state, long epoch, long iteration)
    {
        shell.EnsureCreated();
        shell.CheckEpoch(epoch);
        if (!NeedsIteration(state.State)) return Task.FromResult(new StepDirective(state.State.CheckpointRequest, state.State.Policy));
        return shell.Exclusive(async () =>
        {
            shell.CheckEpoch(epoch);
            if (FixIteration(state.State, iteration)) await shell.WriteOrReloadAsync();
            return new StepDirective(state.State.CheckpointRequest, state.State.Policy);
        });
    }
}
