using System.Net.Sockets;
using System.Threading.Channels;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using PluggableShim.Contracts.Events;

namespace PluggableShim.Host.Events;

/// <summary>
/// Forwards events to containerd's Events service through an <see cref="IEventTransport"/>
/// (ttrpc on <c>TTRPC_ADDRESS</c>, or gRPC on <c>GRPC_ADDRESS</c>).
/// </summary>
/// <remarks>
/// One loop sends events strictly one after another, so their order is the order of
/// <see cref="Publish"/>. A send that fails because containerd is unreachable is retried with
/// exponential back-off (capped) until it succeeds: an event is never skipped to get to the next
/// one. Only an event containerd itself refuses (a status other than Unavailable/DeadlineExceeded)
/// is dropped, with an error in the log. At shutdown <see cref="FlushAsync"/> bounds the wait.
/// </remarks>
internal class EventPublisher : IEventPublisher, IAsyncDisposable
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(2);

    private readonly IEventTransport _transport;
    private readonly string _namespace;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<Envelope> _queue = Channel.CreateUnbounded<Envelope>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _abandon = new();
    private readonly Task _loop;

    public EventPublisher(IEventTransport transport, string ns, TimeProvider time, ILogger logger)
    {
        _transport = transport;
        _namespace = ns;
        _time = time;
        _logger = logger;
        _loop = Task.Run(SendLoopAsync);
    }

    /// <summary>Which transport events take, for the log.</summary>
    public string Transport => _transport.Name;

    public void Publish(string topic, IMessage @event)
    {
        var envelope = new Envelope
        {
            Timestamp = Timestamp.FromDateTimeOffset(_time.GetUtcNow()),
            Namespace = _namespace,
            Topic = topic,
            // containerd 1.6 resolves only bare type names.
            Event = new Any { TypeUrl = @event.Descriptor.FullName, Value = @event.ToByteString() },
        };
        if (!_queue.Writer.TryWrite(envelope))
        {
            EventsLog.PublishedAfterClose(_logger, topic);
        }
    }

    public async Task FlushAsync(TimeSpan timeout)
    {
        _queue.Writer.TryComplete();
        try
        {
            await _loop.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            await _abandon.CancelAsync().ConfigureAwait(false);
            await _loop.ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await FlushAsync(TimeSpan.Zero).ConfigureAwait(false);
        _abandon.Dispose();
        GC.SuppressFinalize(this);
    }

    private async Task SendLoopAsync()
    {
        try
        {
            await foreach (Envelope envelope in _queue.Reader.ReadAllAsync(_abandon.Token).ConfigureAwait(false))
            {
                await SendWithRetryAsync(envelope).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            int lost = _queue.Reader.Count + 1;
            EventsLog.EventsAbandoned(_logger, lost);
        }
        finally
        {
            await _transport.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task SendWithRetryAsync(Envelope envelope)
    {
        TimeSpan backoff = FirstBackoff;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await _transport.ForwardAsync(
                    new ForwardRequest { Envelope = envelope }, _namespace, DateTime.UtcNow + CallTimeout, _abandon.Token).ConfigureAwait(false);
                EventsLog.Forwarded(_logger, envelope.Topic, attempt);
                return;
            }
            catch (RpcException ex) when (!IsTransient(ex))
            {
                EventsLog.Refused(_logger, envelope.Topic, ex.StatusCode, ex.Status.Detail);
                return;
            }
            catch (Exception ex) when (ex is RpcException or SocketException or IOException or HttpRequestException)
            {
                EventsLog.Retrying(_logger, envelope.Topic, attempt, ex.Message);
                await _transport.ResetAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // A fault of ours (a bad address, say) would fail every retry alike: drop this event
                // and keep the loop alive for the next ones, rather than losing all of them silently.
                EventsLog.SendFailed(_logger, envelope.Topic, ex);
                await _transport.ResetAsync().ConfigureAwait(false);
                return;
            }

            await Task.Delay(backoff, _time, _abandon.Token).ConfigureAwait(false);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
        }
    }

    /// <summary>
    /// Whether a failed call is worth retrying: containerd unreachable or slow, or (gRPC) a call the
    /// transport itself broke — an HTTP/2 or socket failure surfaces as Internal or Unknown with the
    /// transport's exception attached, and is no answer from containerd.
    /// </summary>
    internal static bool IsTransient(RpcException ex) =>
        ex.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Cancelled
        || ex.Status.DebugException is HttpRequestException or IOException or SocketException;
}

/// <summary>One way to reach containerd's Events service. Used by one send loop at a time.</summary>
internal interface IEventTransport : IAsyncDisposable
{
    /// <summary>"ttrpc" or "grpc".</summary>
    string Name { get; }

    /// <summary>Sends one event; failures surface as <see cref="RpcException"/> (or a socket/IO error).</summary>
    Task ForwardAsync(ForwardRequest request, string ns, DateTime deadline, CancellationToken cancellationToken);

    /// <summary>Drops the connection after a failure, so that the next send reconnects.</summary>
    ValueTask ResetAsync();
}
