using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using PluggableShim.Contracts.Events;

namespace PluggableShim.Host.Events;

/// <summary>
/// Forwards events to containerd's gRPC Events service (<c>GRPC_ADDRESS</c>, containerd 1.7 and
/// later), for a daemon in gRPC mode. Only constructed in that mode: the ttrpc path never loads
/// Grpc.Net.Client.
/// </summary>
internal sealed class GrpcEventPublisher(string socketPath, string ns, TimeProvider time, ILogger<GrpcEventPublisher> logger)
    : EventPublisher(new GrpcEventTransport(socketPath), ns, time, logger);

/// <summary><c>containerd.services.events.v1.Events/Forward</c> over HTTP/2 on a Unix socket.</summary>
internal sealed class GrpcEventTransport(string socketPath) : IEventTransport
{
    private GrpcChannel? _channel;

    public string Name => "grpc";

    public async Task ForwardAsync(ForwardRequest request, string ns, DateTime deadline, CancellationToken cancellationToken)
    {
        _channel ??= UnixChannel.Create(socketPath);
        var events = new Contracts.Events.Grpc.Events.EventsClient(_channel);
        // containerd's gRPC services read the namespace from this header.
        var headers = new Metadata { { "containerd-namespace", ns } };
        await events.ForwardAsync(request, headers, deadline, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask ResetAsync()
    {
        _channel?.Dispose();
        _channel = null;
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync() => ResetAsync();
}

/// <summary>A gRPC channel whose every connection is a Unix socket at one path.</summary>
internal static class UnixChannel
{
    public static GrpcChannel Create(string socketPath)
    {
        string path = socketPath.StartsWith("unix://", StringComparison.Ordinal) ? socketPath["unix://".Length..] : socketPath;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        // The authority is not used for routing: every connection goes to the socket.
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }
}
