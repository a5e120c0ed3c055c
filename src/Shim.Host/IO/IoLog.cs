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
}
