using System.Diagnostics;

namespace Checkpointing.Abstractions;

/// <summary>
/// The one source of Checkpointing's tracing spans and their names. A cluster save is one trace: the agent's
/// <see cref="Save"/> span holds <see cref="Begin"/>, <see cref="WriteShard"/> and <see cref="Report"/>, and the run
/// grain's <see cref="Commit"/> span hangs below the report that completed the checkpoint, through Orleans' call
/// propagation. Export them with OpenTelemetry's <c>AddSource(CheckpointTracing.SourceName)</c>.
/// </summary>
public static class CheckpointTracing
{
    /// <summary>The <see cref="ActivitySource"/> name to subscribe to.</summary>
    public const string SourceName = "Checkpointing";

    /// <summary>The source every span starts from.</summary>
    public static readonly ActivitySource Source = new(SourceName, "1.0");

    /// <summary>A checkpointer's save, from the state dict to the committed checkpoint (or, for an async save, to its snapshot).</summary>
    public const string Save = "checkpoint.save";
    /// <summary>A checkpointer's load: read, verify, then adopt into the model and checkpointables.</summary>
    public const string Load = "checkpoint.load";
    /// <summary>ResumeOrLoad: finding the last checkpoint and loading it.</summary>
    public const string Resume = "checkpoint.resume";
    /// <summary>A rank's step 1 of the commit protocol: BeginCheckpoint at the run grain.</summary>
    public const string Begin = "checkpoint.begin";
    /// <summary>A rank's step 2: writing its shard straight into the store.</summary>
    public const string WriteShard = "checkpoint.write_shard";
    /// <summary>A rank's steps 3 and 4: reporting its shard and waiting for the commit.</summary>
    public const string Report = "checkpoint.report";
    /// <summary>The run grain's commit: the manifest, then the catalog, once every rank reported.</summary>
    public const string Commit = "checkpoint.commit";

    /// <summary>Tag: the checkpoint's name.</summary>
    public const string NameTag = "checkpoint.name";
    /// <summary>Tag: the run, "tenant/run".</summary>
    public const string RunTag = "checkpoint.run";
    /// <summary>Tag: the rank.</summary>
    public const string RankTag = "checkpoint.rank";
    /// <summary>Tag: the bytes of tensor data saved, written or committed.</summary>
    public const string BytesTag = "checkpoint.bytes";

    /// <summary>Starts a span named <paramref name="span"/> for checkpoint <paramref name="name"/>; null when nobody listens.</summary>
    public static Activity? Start(string span, string name)
    {
        var activity = Source.StartActivity(span);
        activity?.SetTag(NameTag, name);
        return activity;
    }

    /// <summary>
    /// Runs <paramref name="step"/> in a span named <paramref name="span"/> for checkpoint <paramref name="name"/> (the step may tag
    /// it; it is null when nobody listens); a step that throws marks the span failed, and the exception goes on to the caller.
    /// </summary>
    public static async Task<T> InSpanAsync<T>(string span, string name, Func<Activity?, Task<T>> step)
    {
        using var activity = Start(span, name);
        try
        {
            return await step(activity).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            RecordFailure(activity, e);
            throw;
        }
    }

    /// <summary><see cref="InSpanAsync{T}"/> for a step with no result.</summary>
    public static Task InSpanAsync(string span, string name, Func<Activity?, Task> step) => InSpanAsync(span, name, async activity =>
    {
        await step(activity).ConfigureAwait(false);
        return true;
    });

    /// <summary>Marks <paramref name="activity"/> failed with <paramref name="error"/> (status and exception event).</summary>
    public static void RecordFailure(Activity? activity, Exception error)
    {
        if (activity is null) return;
        activity.SetStatus(ActivityStatusCode.Error, error.Message);
        activity.AddException(error);
    }
}
