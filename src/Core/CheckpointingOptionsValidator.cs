using Checkpointing.Abstractions;
using Microsoft.Extensions.Options;

namespace Checkpointing.Core;

/// <summary>Refuses settings a <see cref="Checkpointer"/> or <see cref="PeriodicCheckpointer"/> would refuse, each failure naming its key, so that the host does not start with them.</summary>
public sealed class CheckpointingOptionsValidator : IValidateOptions<CheckpointingOptions>
{
    /// <inheritdoc/>
    public ValidateOptionsResult Validate(string? name, CheckpointingOptions options)
    {
        var failures = new List<string>();
        var section = CheckpointingOptions.Section;
        if (string.IsNullOrWhiteSpace(options.SaveDir)) failures.Add($"{section}:{nameof(options.SaveDir)} is required: the folder checkpoints are saved in.");
        if (options.Period < 1) failures.Add($"{section}:{nameof(options.Period)} must be at least 1, not {options.Period}.");
        if (options.MaxIter < 0) failures.Add($"{section}:{nameof(options.MaxIter)} must not be negative.");
        if (options.MaxToKeep < 1) failures.Add($"{section}:{nameof(options.MaxToKeep)} must be at least 1 (or absent to keep every checkpoint).");
        if (options.LeftoverMinimumAge < TimeSpan.Zero) failures.Add($"{section}:{nameof(options.LeftoverMinimumAge)} must not be negative.");
        if (options.Incremental && options.Format != CheckpointFormat.Native) failures.Add($"{section}:{nameof(options.Incremental)} needs {nameof(options.Format)} Native.");
        if (!CheckpointName.IsValid(options.FilePrefix)) failures.Add($"{section}:{nameof(options.FilePrefix)} '{options.FilePrefix}' is not a valid checkpoint name.");
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
