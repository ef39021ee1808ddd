namespace Checkpointing.Cli;

/// <summary>Thrown for a command line the user must fix; the message is shown with a pointer to the command's help.</summary>
public sealed class UsageException(string message, string helpCommand = "ckpt") : Exception(message)
{
    /// <summary>The command whose <c>--help</c> answers the error ("ckpt run create"), named in the failure's hint.</summary>
    public string HelpCommand { get; } = helpCommand;
}
