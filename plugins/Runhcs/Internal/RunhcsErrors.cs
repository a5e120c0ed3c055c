using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Runhcs.Internal;

/// <summary>
/// Turns a failed runhcs call into the exception whose status code containerd expects, keeping
/// runhcs's own words. runhcs has no error codes, only messages; these are the ones it prints
/// (its registry state says "ID 'x' was not found", a stopped container "container is stopped").
/// </summary>
internal static class RunhcsErrors
{
    public static Exception From(string command, int exitCode, string message)
    {
        string text = message.Length > 0 ? message : $"exited {exitCode} without a message";
        string full = $"runhcs {command}: {text}";
        if (Has(text, "container is stopped"))
        {
            // Signalling what has ended is NotFound for containerd; anything else on it is a precondition.
            return command == "kill" ? new NotFoundException(full) : new FailedPreconditionException(full);
        }

        if (Has(text, "was not found") || Has(text, "does not exist") || Has(text, "not found")
            || Has(text, "is not present for ID"))
        {
            return new NotFoundException(full);
        }

        if (Has(text, "already exists"))
        {
            return new AlreadyExistsException(full);
        }

        if (Has(text, "is not running") || Has(text, "is not paused") || Has(text, "is paused")
            || Has(text, "is not created") || Has(text, "without --force"))
        {
            return new FailedPreconditionException(full);
        }

        if (Has(text, "invalid") || Has(text, "unknown signal"))
        {
            return new InvalidArgumentException(full);
        }

        return new RunhcsException(command, exitCode, full);
    }

    private static bool Has(string text, string part) => text.Contains(part, StringComparison.OrdinalIgnoreCase);
}

/// <summary>A runhcs failure without a more precise meaning (the host answers Unknown with the message).</summary>
internal sealed class RunhcsException(string command, int exitCode, string message) : Exception(message)
{
    public string Command { get; } = command;

    public int ExitCode { get; } = exitCode;
}
