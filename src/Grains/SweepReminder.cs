using Checkpointing.Contracts;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Grains;

/// <summary>
/// A run grain's sweep reminder. It outlives the activation and its silo: a run whose silo crashed with a checkpoint
/// pending or deletions owed is activated elsewhere and swept without anyone calling it. Registered while there is such
/// work, unregistered once there is none.
/// </summary>
internal sealed class SweepReminder(IGrainBase grain, TimeSpan period, RunId run, ILogger logger)
{
    public const string Name = "sweep";

    private bool _registered;

    /// <summary>The reminder fired, so it is registered.</summary>
    public void Fired() => _registered = true;

    /// <summary>Registers the reminder in the background unless it is; a failure is logged and the next change tries again.</summary>
    public void Ensure()
    {
        if (_registered) return;
        _registered = true;
        _ = RegisterAsync();
    }

    private async Task RegisterAsync()
    {
        try
        {
            await grain.RegisterOrUpdateReminder(Name, period, period);
        }
        catch (Exception e)
        {
            _registered = false;
            logger.LogWarning(e, "Run {Run}: registering the sweep reminder failed; the next change tries again", run);
        }
    }

    public async Task UnregisterAsync()
    {
        try
        {
            if (await grain.GetReminder(Name) is { } reminder) await grain.UnregisterReminder(reminder);
            _registered = false;
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Run {Run}: unregistering the idle sweep reminder failed; it fires again and retries", run);
        }
    }

    /// <summary>Unregisters the reminder if this activation registered it or saw it fire.</summary>
    public Task UnregisterIfRegisteredAsync() => _registered ? UnregisterAsync() : Task.CompletedTask;
}
