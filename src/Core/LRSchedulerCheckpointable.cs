using System.Globalization;
using System.Reflection;
using TorchSharp;

namespace Checkpointing.Core;

/// <summary>
/// An LR scheduler's progress: epoch, step count, base and last learning rates. TorchSharp keeps
/// these in non-public fields and offers no state_dict, so they are read and written by
/// reflection; a TorchSharp release that renames them fails here loudly, not silently.
/// </summary>
public sealed class LRSchedulerCheckpointable(torch.optim.lr_scheduler.LRScheduler scheduler) : ICheckpointable
{
    private const BindingFlags Flags = BindingFlags.NonPublic | BindingFlags.Instance;
    private static readonly FieldInfo LastEpoch = Field("_last_epoch");
    private static readonly FieldInfo StepCount = Field("_step_count");
    private static readonly FieldInfo LastLrs = Field("_last_lrs");
    private static readonly FieldInfo BaseLrs = Field("_base_lrs");

    private static FieldInfo Field(string name) =>
        typeof(torch.optim.lr_scheduler.LRScheduler).GetField(name, Flags)
        ?? throw new MissingFieldException($"TorchSharp's LRScheduler has no field {name}; this TorchSharp version is not supported for scheduler checkpoints.");

    /// <summary>The scheduler's type name and its <c>last_epoch</c>, <c>_step_count</c>, <c>base_lrs</c> and <c>_last_lr</c>, under PyTorch's names.</summary>
    public OrderedDictionary<string, object?> StateDict() => new(StringComparer.Ordinal)
    {
        ["type"] = scheduler.GetType().Name,
        ["last_epoch"] = (long)(int)LastEpoch.GetValue(scheduler)!,
        ["_step_count"] = (long)(int)StepCount.GetValue(scheduler)!,
        ["base_lrs"] = ((IEnumerable<double>)BaseLrs.GetValue(scheduler)!).Select(d => (object?)d).ToList(),
        ["_last_lr"] = ((IEnumerable<double>?)LastLrs.GetValue(scheduler) ?? []).Select(d => (object?)d).ToList(),
    };

    /// <summary>Writes the saved epoch, step count and learning rates back into the scheduler.</summary>
    /// <param name="state">What <see cref="StateDict"/> saved.</param>
    /// <exception cref="InvalidDataException">the state is another scheduler type's, or its learning rates are not a list</exception>
    public void LoadStateDict(IReadOnlyDictionary<string, object?> state)
    {
        var type = state.GetValueOrDefault("type") as string;
        if (type != scheduler.GetType().Name)
            throw new InvalidDataException($"Checkpoint holds {type ?? "unknown"} scheduler state, but the scheduler is {scheduler.GetType().Name}.");
        LastEpoch.SetValue(scheduler, Convert.ToInt32(state["last_epoch"], CultureInfo.InvariantCulture));
        StepCount.SetValue(scheduler, Convert.ToInt32(state["_step_count"], CultureInfo.InvariantCulture));
        BaseLrs.SetValue(scheduler, Doubles(state["base_lrs"]));
        LastLrs.SetValue(scheduler, Doubles(state["_last_lr"]));
    }

    private static List<double> Doubles(object? value) =>
        (value as IList<object?> ?? throw new InvalidDataException("Scheduler learning rates are not a list.")).Select(v => Convert.ToDouble(v, CultureInfo.InvariantCulture)).ToList();
}
