
namespace Checkpointing.Silo;

/// <summary>A setting the silo cannot start with; the message names it.</summary>
public sealed class InvalidSiloConfigurationException(string message) : Exception(message);
