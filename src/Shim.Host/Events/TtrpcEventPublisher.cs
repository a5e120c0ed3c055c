using System.Net.Sockets;
using System.Threading.Channels;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using PluggableShim.Contracts.Events;
using PluggableShim.Ttrpc;

namespace PluggableShim.Host.Events;

/// <summary>
/// Forwards events to containerd's ttrpc Events service (<c>TTRPC_ADDRESS</c>).
/// </summary>
/// <remarks>
/// One loop sends events strictly one after another, so their order is the order of
/// <see cref="Publish"/>. A send that fails because containerd is unreachable is retried with
/// exponential back-off (capped) until it succeeds: an event is never skipped to get to the next
/// one. Only an event containerd itself refuses (a status other than Unavailable/DeadlineExceeded)
/// is dropped, with an error in the log. At shutdown <see cref="FlushAsync"/> bounds the wait.
/// </remarks>
internal sealed class TtrpcEventPublisher : IEventPublisher, IAsyncDisposable
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(2);

    private readonly string _address;
    private readonly string _namespace;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Channel<Envelope> _queue = Channel.CreateUnbounded<Envelope>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _abandon = new();
    private readonly Task _loop;
    private TtrpcClient? _client;

    public TtrpcEventPublisher(string address, string ns, TimeProvider time, ILogger<TtrpcEventPublisher> logger)
    {
        _address = address;
        _namespace = ns;
        _time = time;
        _logger = logger;
        _loop = Task.Run(SendLoopAsync);
    }

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
            if (_client is not null)
            {
                await _client.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task SendWithRetryAsync(Envelope envelope)
    {
        TimeSpan backoff = FirstBackoff;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                _client ??= await TtrpcClient.ConnectAsync(_address, cancellationToken: _abandon.Token).ConfigureAwait(false);
                var events = new Contracts.Events.Events.EventsClient(_client);
                var headers = new Metadata { { "containerd-namespace-ttrpc", _namespace } };
                await events.ForwardAsync(
                    new ForwardRequest { Envelope = envelope },
                    headers,
                    deadline: DateTime.UtcNow + CallTimeout,
                    cancellationToken: _abandon.Token).ConfigureAwait(false);
                EventsLog.Forwarded(_logger, envelope.Topic, attempt);
                return;
            }
            catch (RpcException ex) when (ex.StatusCode is not (StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Cancelled))
            {
                EventsLog.Refused(_logger, envelope.Topic, ex.StatusCode, ex.Status.Detail);
                return;
            }
            catch (Exception ex) when (ex is RpcException or SocketException or IOException)
            {
                EventsLog.Retrying(_logger, envelope.Topic, attempt, ex.Message);
                if (_client is not null)
                {
                    await _client.DisposeAsync().ConfigureAwait(false);
                    _client = null;
                }
            }

            await Task.Delay(backoff, _time, _abandon.Token).ConfigureAwait(false);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
        }
    }
}
