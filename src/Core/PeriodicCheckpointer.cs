using Checkpointing.Abstractions;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Core;

/// <summary>
/// fvcore's <c>PeriodicCheckpointer</c>: call <see cref="Step"/> every iteration; it saves
/// "{prefix}_{iteration:D7}" when (iteration + 1) % period == 0 and "{prefix}_final" from
/// iteration max_iter − 1 on, records "iteration" in the checkpoint, and keeps only the newest
/// max_to_keep periodic checkpoints (never a "_final" one, never the tagged one).
/// </summary>
/// <remarks>
/// Unlike fvcore, retention survives restarts: the periodic checkpoints already in the save folder
/// count towards max_to_keep, so a resumed run does not leave its earlier checkpoints behind forever.
/// </remarks>
public sealed class PeriodicCheckpointer
{
    private readonly List<string> _recent = [];

    /// <summary>
    /// fvcore's <c>PeriodicCheckpointer(checkpointer, period, max_iter=None, max_to_keep=None, file_prefix="model")</c>. With
    /// <paramref name="maxToKeep"/> and a backend that applies no retention itself, the periodic checkpoints already saved are
    /// listed now and count towards it.
    /// </summary>
    /// <param name="checkpointer">Saves the checkpoints; its backend decides where, and whether it applies retention itself (the run grain does).</param>
    /// <param name="period">Save every this many iterations: at iterations where (iteration + 1) % period == 0. At least 1.</param>
    /// <param name="maxIter">The training's iteration count: "{prefix}_final" is saved from iteration maxIter − 1 on; null: never.</param>
    /// <param name="maxToKeep">How many periodic checkpoints to keep, the newest; null keeps all. At least 1.</param>
    /// <param name="filePrefix">The start of every name this checkpointer saves; a valid checkpoint name.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="period"/>, <paramref name="maxIter"/> or <paramref name="maxToKeep"/> is below 1</exception>
    /// <exception cref="ArgumentException"><paramref name="filePrefix"/> is not a valid checkpoint name</exception>
    public PeriodicCheckpointer(Checkpointer checkpointer, int period, long? maxIter = null, int? maxToKeep = null, string filePrefix = "model")
    {
        Checkpointer = checkpointer;
        Policy = new PeriodicPolicy(period, maxIter, maxToKeep, filePrefix).Validated();
        if (Policy.MaxToKeep is not null && checkpointer.Backend is { AppliesRetention: false } backend)
        {
            _recent.AddRange(backend.ListAsync(CancellationToken.None).GetAwaiter().GetResult()
                .Where(Policy.IsPeriodicName)
                .OrderBy(Policy.IterationOfPeriodicName));
        }
    }

    /// <summary>The checkpointer every save goes through.</summary>
    public Checkpointer Checkpointer { get; }

    /// <summary>The schedule and retention this checkpointer applies, the same rules a run grain applies in cluster mode.</summary>
    public PeriodicPolicy Policy { get; }

    /// <summary>Names of the periodic checkpoints retention currently tracks, oldest first.</summary>
    public IReadOnlyList<string> RecentCheckpoints => _recent;

    /// <summary>
    /// fvcore's <c>step(iteration, **kwargs)</c>; call it once per iteration. Saves "{prefix}_{iteration:D7}" when
    /// (iteration + 1) % period == 0, then deletes periodic checkpoints beyond max_to_keep (unless the backend applies
    /// retention itself); saves "{prefix}_final" from iteration max_iter − 1 on. Blocks while it saves; see <see cref="StepAsync"/>.
    /// </summary>
    /// <param name="iteration">The iteration just finished, counted from 0; saved as "iteration" in the checkpoint.</param>
    /// <param name="extra">More entries to save with the state, fvcore's <c>**kwargs</c>; an "iteration" here overrides <paramref name="iteration"/>.</param>
    public void Step(long iteration, IReadOnlyDictionary<string, object?>? extra = null) => StepAsync(iteration, extra).GetAwaiter().GetResult();

    /// <summary>Saves what the schedule asks for at <paramref name="iteration"/> and applies max_to_keep; see <see cref="Step"/>.</summary>
    /// <param name="iteration">The iteration just finished, counted from 0; saved as "iteration" in the checkpoint.</param>
    /// <param name="extra">More entries to save with the state; an "iteration" here overrides <paramref name="iteration"/>.</param>
    /// <param name="cancellationToken">Cancels the save and the deletions.</param>
    public async Task StepAsync(long iteration, IReadOnlyDictionary<string, object?>? extra = null, CancellationToken cancellationToken = default)
    {
        var additionalState = new Dictionary<string, object?>(StringComparer.Ordinal) { ["iteration"] = iteration };
        foreach (var (key, value) in extra ?? new Dictionary<string, object?>()) additionalState[key] = value;

        if (Policy.IsPeriodicStep(iteration))
        {
            var name = Policy.PeriodicName(iteration);
            await Checkpointer.SaveAsync(name, additionalState, cancellationToken).ConfigureAwait(false);
            if (Policy.MaxToKeep is { } maxToKeep && Checkpointer.Backend is { AppliesRetention: false } backend)
            {
                _recent.Remove(name);
                _recent.Add(name);
                // The backend refuses to delete the tagged checkpoint; retention stops tracking it either way, as fvcore does.
                foreach (var evicted in Policy.Evictions(_recent))
                {
                    _recent.Remove(evicted);
                    if (await backend.DeleteAsync(evicted, cancellationToken).ConfigureAwait(false))
                    {
                        Checkpointer.Logger.LogInformation("Deleted checkpoint {Name} (max_to_keep={MaxToKeep})", evicted, maxToKeep);
                    }
                }
            }
        }
        if (Policy.IsFinalStep(iteration))
        {
            await Checkpointer.SaveAsync(Policy.FinalName, additionalState, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Saves outside the schedule (e.g. on a preemption notice); retention does not track it.</summary>
    public void Save(string name, IReadOnlyDictionary<string, object?>? extra = null) => Checkpointer.Save(name, extra);

    /// <summary>Saves outside the schedule (e.g. on a preemption notice) through <see cref="Checkpointer"/>; retention does not track it.</summary>
    /// <param name="name">The checkpoint's name. One of the periodic form ("{prefix}_" and 7 or more digits) is counted by
    /// max_to_keep after a restart, when the folder is listed again.</param>
    /// <param name="extra">Entries saved beside the state, e.g. "iteration".</param>
    /// <param name="cancellationToken">Cancels the save.</param>
    public Task SaveAsync(string name, IReadOnlyDictionary<string, object?>? extra = null, CancellationToken cancellationToken = default) =>
        Checkpointer.SaveAsync(name, extra, cancellationToken);
}
