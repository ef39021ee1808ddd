using Checkpointing.Contracts;

namespace Checkpointing.TrainerAgent;

/// <summary>A memory-tier holder could not be reached or refused a request: which holder, what was asked, and why.</summary>
public sealed class HolderException(HolderRef holder, string what, string reason, Exception? inner = null)
    : Exception($"Holder {holder.Endpoint} ({holder.Host}): {what}: {reason}", inner);
