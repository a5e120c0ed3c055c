using Microsoft.Extensions.Logging;

namespace PluggableShim.Host.IO;

internal static partial class IoLog
{
    [LoggerMessage(300, LogLevel.Warning, "{Stream} can no longer be delivered; the rest is dropped: {Reason}",
        EventName = "OutputDropped")]
    public static partial void OutputDropped(ILogger logger, string stream, string reason);

    [LoggerMessage(301, LogLevel.Warning, "stdin relay stopped: {Reason}", EventName = "StdinFailed")]
    public static partial void StdinFailed(ILogger logger, string reason);

    [LoggerMessage(302, LogLevel.Debug, "output pipe still open after the process was deleted (a descendant holds it)",
        EventName = "OutputStillOpen")]
    public static partial void OutputStillOpen(ILogger logger);

    [LoggerMessage(303, LogLevel.Debug, "task {ContainerId}: logging program {Program} started with pid {Pid}; waiting for it to be ready",
        EventName = "LoggerSpawned")]
    public static partial void LoggerSpawned(ILogger logger, string containerId, string program, int pid);

    [LoggerMessage(304, LogLevel.Information, "task {ContainerId}: logging program {Program} (pid {Pid}) is ready", EventName = "LoggerReady")]
    public static partial void LoggerReady(ILogger logger, string containerId, string program, int pid);

    [LoggerMessage(305, LogLevel.Warning, "task {ContainerId}: logging program (pid {Pid}) still runs after its input ended; sending {Signal}",
        EventName = "LoggerSignalled")]
    public static partial void LoggerSignalled(ILogger logger, string containerId, int pid, string signal);

    [LoggerMessage(306, LogLevel.Information, "task {ContainerId}: logging program (pid {Pid}) stopped: {Status}", EventName = "LoggerStopped")]
    public static partial void LoggerStopped(ILogger logger, string containerId, int pid, string status);

    [LoggerMessage(307, LogLevel.Error, "task {ContainerId}: logging program (pid {Pid}) survived SIGKILL for {Seconds} s; it is left unreaped",
        EventName = "LoggerNotReaped")]
    public static partial void LoggerNotReaped(ILogger logger, string containerId, int pid, double seconds);

    [LoggerMessage(308, LogLevel.Error, "task {ContainerId}: stopping the logging program (pid {Pid}) failed", EventName = "LoggerStopFailed")]
    public static partial void LoggerStopFailed(ILogger logger, string containerId, int pid, Exception exception);
}
