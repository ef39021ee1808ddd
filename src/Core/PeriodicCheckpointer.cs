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

    public Checkpointer Checkpointer { get; }
    public PeriodicPolicy Policy { get; }

    /// <summary>Names of the periodic checkpoints retention currently tracks, oldest first.</summary>
    public IReadOnlyList<string> RecentCheckpoints => _recent;

    public void Step(long iteration, IReadOnlyDictionary<string, object?>? extra = null) => StepAsync(iteration, extra).GetAwaiter().GetResult();

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

    public Task SaveAsync(string name, IReadOnlyDictionary<string, object?>? extra = null, CancellationToken cancellationToken = default) =>
        Checkpointer.SaveAsync(name, extra, cancellationToken);
}
