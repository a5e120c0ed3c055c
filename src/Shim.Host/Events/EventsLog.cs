using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace PluggableShim.Host.Events;

internal static partial class EventsLog
{
    [LoggerMessage(200, LogLevel.Debug, "event {Topic} forwarded (attempt {Attempt})", EventName = "Forwarded")]
    public static partial void Forwarded(ILogger logger, string topic, int attempt);

    [LoggerMessage(201, LogLevel.Warning, "event {Topic} not delivered yet (attempt {Attempt}): {Reason}; retrying",
        EventName = "Retrying")]
    public static partial void Retrying(ILogger logger, string topic, int attempt, string reason);

    [LoggerMessage(202, LogLevel.Error, "containerd refused event {Topic}: {Code} {Message}", EventName = "Refused")]
    public static partial void Refused(ILogger logger, string topic, StatusCode code, string message);

    [LoggerMessage(203, LogLevel.Error, "shutting down with {Count} events undelivered", EventName = "EventsAbandoned")]
    public static partial void EventsAbandoned(ILogger logger, int count);

    [LoggerMessage(204, LogLevel.Error, "event {Topic} published after the publisher closed; dropped",
        EventName = "PublishedAfterClose")]
    public static partial void PublishedAfterClose(ILogger logger, string topic);

    [LoggerMessage(205, LogLevel.Error, "event {Topic} could not be sent and was dropped", EventName = "SendFailed")]
    public static partial void SendFailed(ILogger logger, string topic, Exception exception);
}
