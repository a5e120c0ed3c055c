using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using PluggableShim.Ttrpc;

namespace PluggableShim.Testing.Transport;

/// <summary>
/// A client connection to a shim at a <see cref="ShimAddress"/>: ttrpc (<see cref="TtrpcClient"/>)
/// or gRPC (<see cref="GrpcShimChannel"/>). <see cref="CallInvoker"/> takes the generated
/// <c>containerd.task.v2.Task</c> client and sends its calls to the service the address names, so
/// the same client (and the same tests) drive v2 and v3 on either transport.
/// </summary>
public sealed class ShimConnection : IAsyncDisposable
{
    private readonly IAsyncDisposable _owned;

    private ShimConnection(ShimAddress address, CallInvoker raw, IAsyncDisposable owned)
    {
        Address = address;
        Raw = raw;
        _owned = owned;
        CallInvoker = address.Version >= 3 ? new ServiceRenamingInvoker(raw, "containerd.task.v2.Task", address.TaskService) : raw;
    }

    public ShimAddress Address { get; }

    /// <summary>Calls to <c>containerd.task.v2.Task</c> go to the address's Task service; others pass unchanged.</summary>
    public CallInvoker CallInvoker { get; }

    /// <summary>The transport's own invoker, with method paths as the client gives them.</summary>
    public CallInvoker Raw { get; }

    public static async Task<ShimConnection> ConnectAsync(ShimAddress address, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.Protocol == "grpc")
        {
            // No eager connect: a channel with a ConnectCallback cannot; the first call connects.
            GrpcChannel channel = GrpcShimChannel.Create(address.SocketPath);
            return new ShimConnection(address, channel.CreateCallInvoker(), new DisposeAction(channel.Dispose));
        }

        TtrpcClient client = await TtrpcClient.ConnectAsync(address.Address, cancellationToken: cancellationToken).ConfigureAwait(false);
        return new ShimConnection(address, client, client);
    }

    public ValueTask DisposeAsync() => _owned.DisposeAsync();

    private sealed class DisposeAction(Action action) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            action();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>A gRPC channel (HTTP/2 without TLS) whose every connection is the Unix socket at one path.</summary>
public static class GrpcShimChannel
{
    public static GrpcChannel Create(string socketPath)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }
}

/// <summary>Sends a generated client's calls for one service to another service with the same methods.</summary>
public sealed class ServiceRenamingInvoker(CallInvoker inner, string from, string to) : CallInvoker
{
    public override TResponse BlockingUnaryCall<TRequest, TResponse>(
        Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        inner.BlockingUnaryCall(Rename(method), host, options, request);

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(
        Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        inner.AsyncUnaryCall(Rename(method), host, options, request);

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(
        Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        inner.AsyncServerStreamingCall(Rename(method), host, options, request);

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(
        Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        inner.AsyncClientStreamingCall(Rename(method), host, options);

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(
        Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        inner.AsyncDuplexStreamingCall(Rename(method), host, options);

    private Method<TRequest, TResponse> Rename<TRequest, TResponse>(Method<TRequest, TResponse> method)
        where TRequest : class
        where TResponse : class =>
        method.ServiceName == from
            ? new Method<TRequest, TResponse>(method.Type, to, method.Name, method.RequestMarshaller, method.ResponseMarshaller)
            : method;
}
