using Microsoft.Extensions.Logging;

namespace PluggableShim.Host.Tasks;

internal static partial class TasksLog
{
    [LoggerMessage(100, LogLevel.Information, "task {ContainerId} created (pid {Pid})", EventName = "Created")]
    public static partial void Created(ILogger logger, string containerId, int pid);

    [LoggerMessage(101, LogLevel.Information, "process {ContainerId}/{ExecId} started (pid {Pid})", EventName = "Started")]
    public static partial void Started(ILogger logger, string containerId, string execId, int pid);

    [LoggerMessage(102, LogLevel.Information, "process {ContainerId}/{ExecId} exited with status {ExitStatus}",
        EventName = "Exited")]
    public static partial void Exited(ILogger logger, string containerId, string execId, int exitStatus);

    [LoggerMessage(103, LogLevel.Information, "task {ContainerId} deleted", EventName = "Deleted")]
    public static partial void Deleted(ILogger logger, string containerId);

    [LoggerMessage(104, LogLevel.Warning, "output of {ContainerId}/{ExecId} still open {Seconds} s after exit; exit reported anyway",
        EventName = "OutputNotDrained")]
    public static partial void OutputNotDrained(ILogger logger, string containerId, string execId, double seconds);

    [LoggerMessage(105, LogLevel.Warning, "{Method} failed: {Code} {Message}", EventName = "CallFailed")]
    public static partial void CallFailed(ILogger logger, string method, Grpc.Core.StatusCode code, string message);

    [LoggerMessage(106, LogLevel.Error, "{Method} failed unexpectedly", EventName = "CallCrashed")]
    public static partial void CallCrashed(ILogger logger, string method, Exception exception);

    [LoggerMessage(107, LogLevel.Error, "exit handling of {ContainerId}/{ExecId} failed", EventName = "ExitHandlingFailed")]
    public static partial void ExitHandlingFailed(ILogger logger, string containerId, string execId, Exception exception);

    [LoggerMessage(108, LogLevel.Information, "shutdown requested: {Reason}", EventName = "ShutdownRequested")]
    public static partial void ShutdownRequested(ILogger logger, string reason);

    [LoggerMessage(109, LogLevel.Debug, "{Method} {ContainerId} {ExecId}", EventName = "Call")]
    public static partial void Call(ILogger logger, string method, string containerId, string execId);
}
