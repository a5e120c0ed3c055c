using Microsoft.Extensions.Logging;

namespace PluggableShim.Plugins.Runhcs.Internal;

/// <summary>The Runhcs plugin's log events (ids 3000–3099).</summary>
internal static partial class RunhcsLog
{
    /// <summary>A runhcs log entry re-emitted at its own level; its fields and time travel in a scope.</summary>
    [LoggerMessage(EventId = 3000, Message = "runhcs {Source} {ContainerId}: {Message}", EventName = "RunhcsEntry")]
    public static partial void Entry(ILogger logger, LogLevel level, string source, string containerId, string message);

    [LoggerMessage(3001, LogLevel.Debug, "runhcs {Command} {ContainerId} exited {ExitCode} after {ElapsedMs} ms",
        EventName = "CommandFinished")]
    public static partial void CommandFinished(ILogger logger, string command, string containerId, int exitCode, long elapsedMs);

    [LoggerMessage(3002, LogLevel.Warning, "runhcs {Command} {ContainerId} failed: {Message}", EventName = "CommandFailed")]
    public static partial void CommandFailed(ILogger logger, string command, string containerId, string message);

    [LoggerMessage(3003, LogLevel.Information,
        "runhcs created {ContainerId}: shim pid {Pid}, {LayerCount} layers, lcow={Lcow}, config rewritten={Rewritten}",
        EventName = "Created")]
    public static partial void Created(ILogger logger, string containerId, int pid, int layerCount, bool lcow, bool rewritten);

    [LoggerMessage(3004, LogLevel.Information, "runhcs {ContainerId} exec {ExecId}: shim pid {Pid}", EventName = "ExecStarted")]
    public static partial void ExecStarted(ILogger logger, string containerId, string execId, int pid);

    [LoggerMessage(3005, LogLevel.Debug, "runhcs {ContainerId} {ExecId} pid {Pid} exited {Status}", EventName = "ProcessExited")]
    public static partial void ProcessExited(ILogger logger, string containerId, string execId, int pid, int status);

    [LoggerMessage(3006, LogLevel.Warning,
        "runhcs {ContainerId} pid {Pid}: exit status could not be observed ({Reason}); reporting {Status}",
        EventName = "ExitUnobserved")]
    public static partial void ExitUnobserved(ILogger logger, string containerId, int pid, string reason, int status);

    [LoggerMessage(3007, LogLevel.Warning, "runhcs {Source} log listener for {ContainerId} stopped", EventName = "ListenerFailed")]
    public static partial void ListenerFailed(ILogger logger, string source, string containerId, Exception exception);

    [LoggerMessage(3008, LogLevel.Warning, "runhcs {ContainerId}: cleanup step {Step} failed", EventName = "CleanupFailed")]
    public static partial void CleanupFailed(ILogger logger, string containerId, string step, Exception exception);

    [LoggerMessage(3009, LogLevel.Warning,
        "cannot make the shim a child subreaper; exit statuses of runhcs shim processes will not be observed",
        EventName = "SubreaperFailed")]
    public static partial void SubreaperFailed(ILogger logger);

    [LoggerMessage(3010, LogLevel.Debug, "runhcs {Source} log for {ContainerId}: connection ended", EventName = "LogConnectionEnded")]
    public static partial void LogConnectionEnded(ILogger logger, string source, string containerId);
}
