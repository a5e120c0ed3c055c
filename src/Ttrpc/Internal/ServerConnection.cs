using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using PluggableShim.Ttrpc.Wire;

namespace PluggableShim.Ttrpc.Internal;

/// <summary>
/// One accepted ttrpc connection on the server side.
/// </summary>
/// <remarks>
/// A single loop reads frames; every valid request is dispatched to the thread
/// pool so that calls on one connection run concurrently and a slow handler never
/// stalls the reader. Responses go through a <see cref="FrameWriter"/>, in the order
/// handlers finish.
///
/// Frame errors are answered on their own stream and the connection is kept:
/// an oversized frame (drained unread) gets ResourceExhausted, an even or
/// non-increasing stream id or an undecodable Request gets InvalidArgument, an
/// unknown method Unimplemented. Only a broken stream (the peer closed inside a
/// frame, a read error) ends the connection; then in-flight handlers are cancelled
/// and their answers dropped.
///
/// Draining (graceful shutdown) lets in-flight calls finish and answer, then closes
/// the connection as soon as it is idle.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001",
    Justification = "_closed has no timer to release, and Drain/Abort may still cancel it after the connection ended.")]
internal sealed class ServerConnection
{
    private static readonly TimeSpan MaxTimer = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    // A status message is cut to this size so that any error fits in one frame.
    private const int MaxStatusMessage = 64 * 1024;

    private readonly Stream _stream;
    private readonly string _peer;
    private readonly MethodRegistry _methods;
    private readonly TtrpcServerOptions _options;
    private readonly ILogger _logger;
    private readonly FrameReader _reader;
    private readonly FrameWriter _writer;
    private readonly CancellationTokenSource _closed = new();
    private readonly Lock _gate = new();

    // Guarded by _gate.
    private int _active;
    private bool _draining;

    // Touched by the read loop only.
    private uint _lastStreamId;

    public ServerConnection(
        Stream stream,
        string peer,
        MethodRegistry methods,
        TtrpcServerOptions options,
        ILogger logger)
    {
        _stream = stream;
        _peer = peer;
        _methods = methods;
        _options = options;
        _logger = logger;
        _reader = new FrameReader(stream);
        _writer = new FrameWriter(stream);
    }

    public async Task RunAsync()
    {
        TtrpcLog.ConnectionOpened(_logger, _peer);
        try
        {
            while (true)
            {
                await WaitForRoomAsync().ConfigureAwait(false);
                using Frame? frame = await _reader.ReadAsync(_closed.Token).ConfigureAwait(false);
                if (frame is null)
                {
                    break;
                }

                Accept(frame);
            }
        }
        catch (OperationCanceledException) when (_closed.IsCancellationRequested)
        {
            // Closed by drain or dispose.
        }
        catch (Exception ex) when (ex is IOException or EndOfStreamException or ObjectDisposedException)
        {
            TtrpcLog.ConnectionFailed(_logger, _peer, ex.Message);
        }
        finally
        {
            await CloseAsync().ConfigureAwait(false);
            TtrpcLog.ConnectionClosed(_logger, _peer);
        }
    }

    // Backpressure: a peer that sends calls but does not read the answers (or floods us with
    // calls) must not grow our memory without bound. Past these limits we stop reading its
    // requests until answers have gone out; its own writes then block in the kernel.
    private const int MaxActiveCalls = 256;
    private const long MaxQueuedResponseBytes = 16L << 20;

    private async ValueTask WaitForRoomAsync()
    {
        while (ActiveCalls >= MaxActiveCalls || _writer.QueuedBytes >= MaxQueuedResponseBytes)
        {
            await Task.Delay(5, _closed.Token).ConfigureAwait(false);
        }
    }

    private int ActiveCalls
    {
        get
        {
            lock (_gate)
            {
                return _active;
            }
        }
    }

    /// <summary>Stops taking work once idle: in-flight calls answer first.</summary>
    public void Drain()
    {
        bool idle;
        lock (_gate)
        {
            _draining = true;
            idle = _active == 0;
        }

        if (idle)
        {
            _closed.Cancel();
        }
    }

    /// <summary>Closes now; in-flight calls are cancelled and their answers dropped.</summary>
    public void Abort()
    {
        _closed.Cancel();
        _stream.Dispose();
    }

    private void Accept(Frame frame)
    {
        FrameHeader header = frame.Header;
        if (header.Type != FrameType.Request)
        {
            TtrpcLog.FrameIgnored(_logger, (byte)header.Type, header.StreamId);
            return;
        }

        uint id = header.StreamId;
        if (frame.Oversized)
        {
            Reject(id, StatusCode.ResourceExhausted,
                $"message length {header.Length} exceeds maximum message size of {FrameHeader.MaxPayload}");
            return;
        }

        if (id % 2 == 0)
        {
            Reject(id, StatusCode.InvalidArgument, $"stream id {id} must be odd for client-initiated requests");
            return;
        }

        if (id <= _lastStreamId)
        {
            Reject(id, StatusCode.InvalidArgument, $"stream id {id} is not greater than the last one ({_lastStreamId})");
            return;
        }

        _lastStreamId = id;

        Request request;
        try
        {
            request = Request.Parser.ParseFrom(frame.Payload);
        }
        catch (InvalidProtocolBufferException ex)
        {
            Reject(id, StatusCode.InvalidArgument, "unreadable ttrpc request: " + ex.Message);
            return;
        }

        ServerMethod? method = _methods.Find(request.Service, request.Method, out string? notFound);
        if (method is null)
        {
            Reject(id, StatusCode.Unimplemented, notFound!);
            return;
        }

        lock (_gate)
        {
            _active++;
        }

        var call = new PendingCall(this, id, request, method);
        ThreadPool.UnsafeQueueUserWorkItem(static c => _ = c.Owner.DispatchAsync(c), call, preferLocal: false);
    }

    private async Task DispatchAsync(PendingCall call)
    {
        Request request = call.Request;
        string fullName = "/" + request.Service + "/" + request.Method;
        CancellationTokenSource? timeout = null;
        CancellationTokenSource? linked = null;
        CancellationToken token;
        DateTime deadline = DateTime.MaxValue;
        if (request.TimeoutNano > 0)
        {
            var after = TimeSpan.FromTicks(Math.Max(1, request.TimeoutNano / 100));
            DateTime now = _options.TimeProvider.GetUtcNow().UtcDateTime;
            deadline = after < DateTime.MaxValue - now ? now + after : DateTime.MaxValue;

            // A timer cannot wait longer than about 49 days; a deadline further out
            // than that is honoured as "no timer", which is indistinguishable in practice.
            if (after <= MaxTimer)
            {
                timeout = new CancellationTokenSource(after, _options.TimeProvider);
                linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, _closed.Token);
            }
        }

        // Each call gets its own token, released when the call ends: closing the
        // connection later must not fire callbacks a finished handler left registered.
        linked ??= CancellationTokenSource.CreateLinkedTokenSource(_closed.Token);
        token = linked.Token;

        try
        {
            var context = new TtrpcServerCallContext(fullName, _peer, deadline, ToMetadata(request), token);
            ReadOnlyMemory<byte> payload = await call.Method.InvokeAsync(request.Payload, context).ConfigureAwait(false);
            if (payload.Length > FrameHeader.MaxPayload - 64)
            {
                Respond(call.StreamId, StatusCode.ResourceExhausted,
                    $"response of {payload.Length} bytes exceeds the ttrpc message limit", default);
            }
            else
            {
                Respond(call.StreamId, StatusCode.OK, string.Empty, payload);
            }
        }
        catch (RpcException ex)
        {
            Respond(call.StreamId, ex.StatusCode, ex.Status.Detail, default);
        }
        catch (OperationCanceledException) when (timeout?.IsCancellationRequested == true)
        {
            Respond(call.StreamId, StatusCode.DeadlineExceeded, "context deadline exceeded", default);
        }
        catch (OperationCanceledException) when (_closed.IsCancellationRequested)
        {
            // The connection is gone; there is nobody to answer.
        }
        catch (Exception ex)
        {
            TtrpcLog.HandlerFailed(_logger, fullName, ex);
            Respond(call.StreamId, StatusCode.Unknown, ex.Message, default);
        }
        finally
        {
            linked?.Dispose();
            timeout?.Dispose();
            Finished();
        }
    }

    private void Finished()
    {
        bool closeNow;
        lock (_gate)
        {
            _active--;
            closeNow = _draining && _active == 0;
        }

        if (closeNow)
        {
            _closed.Cancel();
        }
    }

    private void Reject(uint streamId, StatusCode code, string message)
    {
        TtrpcLog.FrameRejected(_logger, streamId, code, message);
        Respond(streamId, code, message, default);
    }

    private void Respond(uint streamId, StatusCode code, string message, ReadOnlyMemory<byte> payload)
    {
        if (message.Length > MaxStatusMessage)
        {
            message = string.Concat(message.AsSpan(0, MaxStatusMessage), "… (truncated)");
        }

        var response = new Response
        {
            Status = new Wire.Status { Code = (int)code, Message = message },
            Payload = UnsafeByteOperations.UnsafeWrap(payload),
        };

        // False only when the connection is already closing: the answer has nowhere to go.
        _ = _writer.TryEnqueue(streamId, FrameType.Response, response);
    }

    private Metadata ToMetadata(Request request)
    {
        var metadata = new Metadata();
        foreach (KeyValue pair in request.Metadata)
        {
            try
            {
                metadata.Add(pair.Key, pair.Value);
            }
            catch (ArgumentException)
            {
                // gRPC metadata forbids some keys ttrpc allows (upper case is folded,
                // "-bin" needs bytes); such an entry is skipped rather than failing the call.
                TtrpcLog.FrameRejected(_logger, 0, StatusCode.OK, "metadata key skipped: " + pair.Key);
            }
        }

        return metadata;
    }

    private async Task CloseAsync()
    {
        _closed.Cancel();
        _writer.Complete();
        try
        {
            // Flush answers already queued (a drained connection's last responses).
            await _writer.Completion.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or TimeoutException)
        {
            // The peer is gone or stuck; nothing more can be delivered.
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
    }

    private sealed record PendingCall(ServerConnection Owner, uint StreamId, Request Request, ServerMethod Method);
}
