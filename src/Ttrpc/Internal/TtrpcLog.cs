using Microsoft.Extensions.Logging;

namespace PluggableShim.Ttrpc.Internal;

internal static partial class TtrpcLog
{
    [LoggerMessage(1, LogLevel.Debug, "ttrpc connection from {Peer} opened", EventName = "ConnectionOpened")]
    public static partial void ConnectionOpened(ILogger logger, string peer);

    [LoggerMessage(2, LogLevel.Debug, "ttrpc connection from {Peer} closed", EventName = "ConnectionClosed")]
    public static partial void ConnectionClosed(ILogger logger, string peer);

    [LoggerMessage(3, LogLevel.Warning, "ttrpc connection from {Peer} failed: {Reason}", EventName = "ConnectionFailed")]
    public static partial void ConnectionFailed(ILogger logger, string peer, string reason);

    [LoggerMessage(4, LogLevel.Warning, "ttrpc peer {Peer} refused: uid {PeerUid} is not ours ({OwnUid})",
        EventName = "PeerRefused")]
    public static partial void PeerRefused(ILogger logger, string peer, uint peerUid, uint ownUid);

    [LoggerMessage(5, LogLevel.Debug, "ttrpc stream {StreamId} rejected with {Code}: {Message}",
        EventName = "FrameRejected")]
    public static partial void FrameRejected(ILogger logger, uint streamId, Grpc.Core.StatusCode code, string message);

    [LoggerMessage(6, LogLevel.Debug, "ttrpc ignored a frame of type {FrameType} on stream {StreamId}",
        EventName = "FrameIgnored")]
    public static partial void FrameIgnored(ILogger logger, byte frameType, uint streamId);

    [LoggerMessage(7, LogLevel.Error, "ttrpc handler {Method} failed", EventName = "HandlerFailed")]
    public static partial void HandlerFailed(ILogger logger, string method, Exception exception);

    [LoggerMessage(8, LogLevel.Warning, "ttrpc accept on {Address} failed; retrying", EventName = "AcceptFailed")]
    public static partial void AcceptFailed(ILogger logger, string address, Exception exception);

    [LoggerMessage(9, LogLevel.Debug, "ttrpc client connection to {Address} closed: {Reason}",
        EventName = "ClientClosed")]
    public static partial void ClientClosed(ILogger logger, string address, string reason);
}
