using Microsoft.Extensions.Logging;

namespace PluggableShim.Plugins.Fake.Internal;

internal static partial class FakeLog
{
    [LoggerMessage(1000, LogLevel.Debug, "fake {ContainerId}: started {Executable} as host pid {Pid}", EventName = "ProcessStarted")]
    public static partial void ProcessStarted(ILogger logger, string containerId, int pid, string executable);

    [LoggerMessage(1001, LogLevel.Warning, "fake {ContainerId}: could not watch a process", EventName = "WatchFailed")]
    public static partial void WatchFailed(ILogger logger, string containerId, Exception exception);
}
