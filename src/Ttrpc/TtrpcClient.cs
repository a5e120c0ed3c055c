using System.Collections.Concurrent;
using System.IO.Pipes;
using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PluggableShim.Ttrpc.Internal;
using PluggableShim.Ttrpc.Wire;
using Status = Grpc.Core.Status;

namespace PluggableShim.Ttrpc;

/// <summary>
/// A ttrpc client connection that generated gRPC clients run over:
/// <c>new Events.EventsClient(ttrpcClient)</c>. Calls are multiplexed on one
/// connection with odd, increasing stream ids.
/// </summary>
/// <remarks>
/// Only unary calls exist in ttrpc 1.1. A call's deadline travels as timeout_nano
/// and is also enforced locally; cancelling a call stops waiting for its answer (ttrpc
/// 1.1 has no way to tell the server). When the connection closes, every pending call
/// fails with Unavailable and later calls fail at once.
/// </remarks>
public sealed class TtrpcClient : CallInvoker, IAsyncDisposable, IDisposable
{
    private readonly Stream _stream;
    private readonly string _address;
    private readonly ILogger _logger;
    private readonly FrameReader _reader;
    private readonly FrameWriter _writer;
    private readonly ConcurrentDictionary<uint, TaskCompletionSource<Response>> _pending = new();
    private readonly CancellationTokenSource _closed = new();
    private readonly Task _readLoop;
    private readonly Lock _sendLock = new();
    private uint _nextStreamId = unchecked((uint)-1);
    private volatile string? _closeReason;

    private TtrpcClient(Stream stream, string address, ILogger logger)
    {
        _stream = stream;
        _address = address;
        _logger = logger;
        _reader = new FrameReader(stream);
        _writer = new FrameWriter(stream);
        _readLoop = Task.Run(ReadLoopAsync);
    }

    /// <summary>Completes when the connection has closed, for whatever reason.</summary>
    public Task Completion => _readLoop;

    /// <summary>Dials <paramref name="address"/> (see <see cref="TtrpcAddress.Parse"/>).</summary>
    public static async Task<TtrpcClient> ConnectAsync(
        string address,
        ILoggerFactory? loggerFactory = null,
        CancellationToken cancellationToken = default)
    {
        TtrpcAddress parsed = TtrpcAddress.Parse(address);
        Stream stream = parsed.Kind switch
        {
            TtrpcAddressKind.NamedPipe => await ConnectPipeAsync(parsed.Target, cancellationToken).ConfigureAwait(false),
            _ => await ConnectUnixAsync(parsed, cancellationToken).ConfigureAwait(false),
        };
        ILogger logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PluggableShim.Ttrpc.Client");
        return new TtrpcClient(stream, parsed.ToString(), logger);
    }

    /// <summary>Wraps an already connected stream (tests, inherited descriptors).</summary>
    public static TtrpcClient FromStream(Stream stream, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ILogger logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PluggableShim.Ttrpc.Client");
        return new TtrpcClient(stream, "stream", logger);
    }

    /// <inheritdoc />
    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        string? host,
        CallOptions options,
        TRequest request)
    {
        ArgumentNullException.ThrowIfNull(method);
        Task<TResponse> response = CallAsync(method, options, request);
        return new AsyncUnaryCall<TResponse>(
            response,
            Task.FromResult(new Metadata()),
            () => response.IsCompletedSuccessfully ? Status.DefaultSuccess : StatusOf(response),
            () => [],
            () => { });
    }

    /// <inheritdoc />
    public override TResponse BlockingUnaryCall<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        string? host,
        CallOptions options,
        TRequest request)
    {
        ArgumentNullException.ThrowIfNull(method);
        return CallAsync(method, options, request).GetAwaiter().GetResult();
    }

    /// <inheritdoc />
    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        string? host,
        CallOptions options,
        TRequest request) => throw StreamingUnsupported(method);

    /// <inheritdoc />
    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        string? host,
        CallOptions options) => throw StreamingUnsupported(method);

    /// <inheritdoc />
    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        string? host,
        CallOptions options) => throw StreamingUnsupported(method);

    /// <summary>Closes the connection; pending calls fail with Unavailable.</summary>
    public async ValueTask DisposeAsync()
    {
        Close("client disposed");
        await _readLoop.ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private async Task<TResponse> CallAsync<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        CallOptions options,
        TRequest request)
        where TRequest : class
        where TResponse : class
    {
        options.CancellationToken.ThrowIfCancellationRequested();
        ReadOnlyMemory<byte> payload = PayloadSerializationContext.Serialize(method.RequestMarshaller, request);
        var envelope = new Request
        {
            Service = method.ServiceName,
            Method = method.Name,
            Payload = UnsafeByteOperations.UnsafeWrap(payload),
        };

        TimeSpan? timeout = null;
        if (options.Deadline is { } deadline && deadline != DateTime.MaxValue)
        {
            timeout = deadline.ToUniversalTime() - DateTime.UtcNow;
            if (timeout <= TimeSpan.Zero)
            {
                throw new RpcException(new Status(StatusCode.DeadlineExceeded, "deadline passed before the call was sent"));
            }

            envelope.TimeoutNano = timeout.Value.Ticks * 100;
        }

        if (options.Headers is { } headers)
        {
            foreach (Metadata.Entry entry in headers)
            {
                if (!entry.IsBinary)
                {
                    envelope.Metadata.Add(new KeyValue { Key = entry.Key, Value = entry.Value });
                }
            }
        }

        if (envelope.CalculateSize() > FrameHeader.MaxPayload)
        {
            // Never put an oversized frame on the wire: the peer would only refuse it.
            throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"{method.FullName} request of {envelope.CalculateSize()} bytes exceeds the ttrpc message limit of {FrameHeader.MaxPayload}"));
        }

        PreparedFrame frame = FrameWriter.Prepare(FrameType.Request, envelope);
        var completion = new TaskCompletionSource<Response>(TaskCreationOptions.RunContinuationsAsynchronously);
        uint streamId;
        bool queued;

        // Stream ids must reach the wire in increasing order (ttrpc 1.2 peers refuse
        // anything else), so picking the id and queueing the frame happen together.
        lock (_sendLock)
        {
            streamId = _nextStreamId += 2;
            _pending[streamId] = completion;
            if (_closeReason is null)
            {
                queued = _writer.TryEnqueue(frame, streamId);
            }
            else
            {
                queued = false;
                frame.Release();
            }
        }

        try
        {
            if (!queued)
            {
                throw Unavailable(_closeReason ?? "connection closed");
            }

            Response response = await WaitAsync(completion.Task, timeout, options.CancellationToken).ConfigureAwait(false);
            if (response.Status is { Code: not 0 } status)
            {
                throw new RpcException(new Status((StatusCode)status.Code, status.Message));
            }

            return method.ResponseMarshaller.ContextualDeserializer(
                new PayloadDeserializationContext(response.Payload.Memory));
        }
        finally
        {
            _pending.TryRemove(streamId, out _);
        }
    }

    private static async Task<Response> WaitAsync(Task<Response> response, TimeSpan? timeout, CancellationToken token)
    {
        try
        {
            return timeout is { } t
                ? await response.WaitAsync(t, token).ConfigureAwait(false)
                : await response.WaitAsync(token).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, "deadline exceeded waiting for the ttrpc response"));
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            throw new RpcException(new Status(StatusCode.Cancelled, "call cancelled by the caller"));
        }
    }

    private async Task ReadLoopAsync()
    {
        string reason = "connection closed by peer";
        try
        {
            while (true)
            {
                using Frame? frame = await _reader.ReadAsync(_closed.Token).ConfigureAwait(false);
                if (frame is null)
                {
                    break;
                }

                Deliver(frame);
            }
        }
        catch (Exception ex) when (ex is IOException or EndOfStreamException or ObjectDisposedException
                                       or OperationCanceledException or SocketException)
        {
            reason = _closeReason ?? ex.Message;
        }
        finally
        {
            Close(reason);
            try
            {
                await _writer.Completion.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or SocketException)
            {
                // The write side broke too; its error is the same story.
            }

            await _stream.DisposeAsync().ConfigureAwait(false);
            TtrpcLog.ClientClosed(_logger, _address, reason);
        }
    }

    private void Deliver(Frame frame)
    {
        if (frame.Header.Type != FrameType.Response
            || !_pending.TryGetValue(frame.Header.StreamId, out TaskCompletionSource<Response>? waiter))
        {
            return;
        }

        if (frame.Oversized)
        {
            waiter.TrySetException(new RpcException(new Status(StatusCode.ResourceExhausted,
                $"response of {frame.Header.Length} bytes exceeds the ttrpc message limit")));
            return;
        }

        try
        {
            waiter.TrySetResult(Response.Parser.ParseFrom(frame.Payload));
        }
        catch (InvalidProtocolBufferException ex)
        {
            waiter.TrySetException(new RpcException(new Status(StatusCode.Internal, "unreadable ttrpc response: " + ex.Message)));
        }
    }

    private void Close(string reason)
    {
        _closeReason ??= reason;
        _writer.Complete();
        if (!_closed.IsCancellationRequested)
        {
            _closed.Cancel();
        }

        foreach (TaskCompletionSource<Response> waiter in _pending.Values)
        {
            waiter.TrySetException(Unavailable(_closeReason));
        }
    }

    private static RpcException Unavailable(string reason) =>
        new(new Status(StatusCode.Unavailable, "ttrpc: connection closed: " + reason));

    private static Status StatusOf(Task task) =>
        task.Exception?.InnerException is RpcException rpc ? rpc.Status : new Status(StatusCode.Unknown, "call not complete");

    private static RpcException StreamingUnsupported(IMethod method) =>
        new(new Status(StatusCode.Unimplemented, $"{method.FullName}: ttrpc carries unary calls only"));

    private static async Task<Stream> ConnectUnixAsync(TtrpcAddress address, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            string target = address.Kind == TtrpcAddressKind.UnixAbstract ? "\0" + address.Target : address.Target;
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(target), cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static readonly TimeSpan PipeWait = TimeSpan.FromSeconds(5);

    private static async Task<Stream> ConnectPipeAsync(string pipeName, CancellationToken cancellationToken)
    {
        var pipe = new NamedPipeClientStream(".", pipeName, PipeDirection.InOut, PipeOptions.Asynchronous);
        try
        {
            // .NET waits for a pipe that does not exist yet, or whose instances are all busy;
            // bounded, so that dialling nothing fails as a Unix socket's connect does.
            await pipe.ConnectAsync(PipeWait, cancellationToken).ConfigureAwait(false);
            return pipe;
        }
        catch (TimeoutException ex)
        {
            pipe.Dispose();
            throw new IOException($"no server on pipe {pipeName} within {PipeWait.TotalSeconds:0} s", ex);
        }
        catch
        {
            pipe.Dispose();
            throw;
        }
    }
}
