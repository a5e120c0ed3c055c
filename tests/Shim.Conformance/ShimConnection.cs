using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using PluggableShim.Ttrpc;
using TaskClient = PluggableShim.Contracts.Task.Task.TaskClient;

namespace PluggableShim.Conformance;

/// <summary>
/// The one place that turns what <c>start</c> printed into a connection: the kit's tests see only
/// <see cref="CallInvoker"/> and <see cref="Task"/>. A plain address (containerd 1.6) and bootstrap
/// JSON with protocol <c>ttrpc</c> are dialled with our ttrpc client; protocol <c>grpc</c> with a
/// gRPC channel on the Unix socket. For version 3, calls the generated <c>containerd.task.v2.Task</c>
/// client makes go to <c>containerd.task.v3.Task</c> (same messages), so the same tests drive
/// every form.
/// </summary>
public sealed class ShimConnection : IAsyncDisposable
{
    private readonly IAsyncDisposable _owned;

    private ShimConnection(ShimAddress printed, CallInvoker raw, IAsyncDisposable owned)
    {
        Printed = printed;
        Raw = raw;
        _owned = owned;
        CallInvoker = printed.Version >= 3 ? new ServiceRenamingInvoker(raw, "containerd.task.v2.Task", printed.TaskService) : raw;
        Task = new TaskClient(CallInvoker);
    }

    /// <summary>What <c>start</c> printed, parsed.</summary>
    public ShimAddress Printed { get; }

    /// <summary>The address the shim serves, as <c>start</c> gave it.</summary>
    public string Address => Printed.Address;

    /// <summary>The protocol spoken: <c>ttrpc</c> or <c>grpc</c>.</summary>
    public string Protocol => Printed.Protocol;

    /// <summary>The socket file behind <see cref="Address"/>: the ttrpc socket, or in gRPC mode the gRPC one (see <see cref="LaunchedShim.TtrpcSocketPath"/>).</summary>
    public string? SocketPath => Printed.SocketPath.StartsWith('/') ? Printed.SocketPath : null;

    /// <summary>Calls to <c>containerd.task.v2.Task</c> go to the address's Task service; others pass unchanged.</summary>
    public CallInvoker CallInvoker { get; }

    /// <summary>The transport's own invoker, with method paths as the client gives them.</summary>
    public CallInvoker Raw { get; }

    /// <summary>The Task API client (<c>containerd.task.v2.Task</c> messages, sent to the printed service).</summary>
    public TaskClient Task { get; }

    /// <summary>Parses <c>start</c>'s output and dials what it names.</summary>
    /// <param name="startOutput">Everything <c>start</c> printed (stdout and stderr, as containerd reads them).</param>
    /// <param name="cancellationToken">Ends the dial.</param>
    public static Task<ShimConnection> ConnectAsync(string startOutput, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(startOutput);
        if (startOutput.Trim().Contains('\n', StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"start must print only the address; it printed \"{startOutput}\"");
        }

        return ConnectAsync(ShimAddress.Parse(startOutput), cancellationToken);
    }

    /// <summary>Dials <paramref name="address"/> over its protocol.</summary>
    /// <param name="address">A parsed start output.</param>
    /// <param name="cancellationToken">Ends the dial.</param>
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

    /// <summary>Another connection to the same shim (containerd dials one per task).</summary>
    /// <param name="cancellationToken">Ends the dial.</param>
    public Task<ShimConnection> ReconnectAsync(CancellationToken cancellationToken = default) =>
        ConnectAsync(Printed, cancellationToken);

    /// <inheritdoc />
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
    /// <summary>A channel to the gRPC server listening at <paramref name="socketPath"/>.</summary>
    /// <param name="socketPath">The Unix socket's path.</param>
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
/// <param name="inner">The transport's invoker.</param>
/// <param name="from">The service the client names (<c>containerd.task.v2.Task</c>).</param>
/// <param name="to">The service to call instead.</param>
public sealed class ServiceRenamingInvoker(CallInvoker inner, string from, string to) : CallInvoker
{
    /// <inheritdoc />
    public override TResponse BlockingUnaryCall<TRequest, TResponse>(
        Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        inner.BlockingUnaryCall(Rename(method), host, options, request);

    /// <inheritdoc />
    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(
        Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        inner.AsyncUnaryCall(Rename(method), host, options, request);

    /// <inheritdoc />
    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(
        Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        inner.AsyncServerStreamingCall(Rename(method), host, options, request);

    /// <inheritdoc />
    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(
        Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        inner.AsyncClientStreamingCall(Rename(method), host, options);

    /// <inheritdoc />
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
