namespace Checkpointing.Core;

/// <summary>
/// Checkpointing settings for an application on the generic host, bound from configuration (the
/// <see cref="Section"/> section by default) and validated when the host starts; see
/// <c>AddCheckpointing</c>. Each maps onto a <see cref="Checkpointer"/>, <see cref="LocalBackendOptions"/>
/// or <see cref="PeriodicCheckpointer"/> argument of the same meaning.
/// </summary>
public sealed class CheckpointingOptions
{
    /// <summary>The configuration section <c>AddCheckpointing</c> binds by default.</summary>
    public const string Section = "Checkpointing";

    /// <summary>The save folder (fvcore's <c>save_dir</c>): the checkpoints and the <c>last_checkpoint</c> tag. Required.</summary>
    public string SaveDir { get; set; } = "";

    /// <summary>How checkpoints are written: <see cref="CheckpointFormat.Native"/> folders (the default) or single <c>.pth</c> files.</summary>
    public CheckpointFormat Format { get; set; } = CheckpointFormat.Native;

    /// <summary>Write only the tensors that changed since the previous checkpoint (native format only).</summary>
    public bool Incremental { get; set; }

    /// <summary>How old a leftover of a killed save must be before it is collected (a younger one may be another process's save in progress).</summary>
    public TimeSpan LeftoverMinimumAge { get; set; } = LocalBackendOptions.DefaultLeftoverMinimumAge;

    /// <summary>Saves copy the state into host memory and write it in the background, as <see cref="Checkpointer.AsyncSave"/>.</summary>
    public bool AsyncSave { get; set; }

    /// <summary>The periodic checkpointer's period in iterations (fvcore's <c>period</c>), at least 1.</summary>
    public int Period { get; set; } = 5000;

    /// <summary>The number of iterations (fvcore's <c>max_iter</c>): <c>{FilePrefix}_final</c> is saved at iteration <c>MaxIter - 1</c>; null for none.</summary>
    public long? MaxIter { get; set; }

    /// <summary>Keep only this many newest periodic checkpoints (fvcore's <c>max_to_keep</c>), at least 1; null keeps all.</summary>
    public int? MaxToKeep { get; set; }

    /// <summary>The name prefix of periodic checkpoints (fvcore's <c>file_prefix</c>).</summary>
    public string FilePrefix { get; set; } = "model";
}
