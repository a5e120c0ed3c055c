using Microsoft.Extensions.Logging;

namespace PluggableShim.Plugins.Fake.Internal;

internal static partial class FakeLog
{
    [LoggerMessage(1000, LogLevel.Debug, "fake {ContainerId}: started {Executable} as host pid {Pid}", EventName = "ProcessStarted")]
    public static partial void ProcessStarted(ILogger logger, string containerId, int pid, string executable);

    [LoggerMessage(1001, LogLevel.Warning, "fake {ContainerId}: could not watch a process", EventName = "WatchFailed")]
    public static partial void WatchFailed(ILogger logger, string containerId, Exception exception);

    [LoggerMessage(1010, LogLevel.Information, "fake {ContainerId}: fault injection armed by {Annotations}", EventName = "FaultsArmed")]
    public static partial void FaultsArmed(ILogger logger, string containerId, string annotations);

    [LoggerMessage(1011, LogLevel.Information, "fake {ContainerId}: delaying {Operation} by {DelayMs} ms (injected)", EventName = "FaultDelay")]
    public static partial void Delaying(ILogger logger, string containerId, string operation, double delayMs);

    [LoggerMessage(1012, LogLevel.Information, "fake {ContainerId}: failing {Operation} as {Annotation} asks", EventName = "FaultError")]
    public static partial void Failing(ILogger logger, string containerId, string operation, string annotation);

    [LoggerMessage(1013, LogLevel.Information, "fake {ContainerId}: ending exec '{ExecId}' (pid {Pid}) as exit-after asks", EventName = "FaultExit")]
    public static partial void ExitInjected(ILogger logger, string containerId, string execId, int pid);

    [LoggerMessage(1014, LogLevel.Information, "fake {ContainerId}: simulating an OOM kill of exec '{ExecId}' (pid {Pid})", EventName = "FaultOom")]
    public static partial void OomInjected(ILogger logger, string containerId, string execId, int pid);

    [LoggerMessage(1020, LogLevel.Information,
        "fake {ContainerId}: resources recorded: memory limit {MemoryLimit}, cpu shares {CpuShares}, cpu quota {CpuQuota}, pids limit {PidsLimit}",
        EventName = "ResourcesUpdated")]
    public static partial void ResourcesUpdated(ILogger logger, string containerId, long? memoryLimit, ulong? cpuShares, long? cpuQuota, long? pidsLimit);
}
