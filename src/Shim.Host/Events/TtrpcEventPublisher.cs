using Grpc.Core;
using Microsoft.Extensions.Logging;
using PluggableShim.Contracts.Events;
using PluggableShim.Ttrpc;

namespace PluggableShim.Host.Events;

/// <summary>Forwards events to containerd's ttrpc Events service (<c>TTRPC_ADDRESS</c>).</summary>
internal sealed class TtrpcEventPublisher(string address, string ns, TimeProvider time, ILogger<TtrpcEventPublisher> logger)
    : EventPublisher(new TtrpcEventTransport(address), ns, time, logger);

/// <summary><c>containerd.services.events.ttrpc.v1.Events/Forward</c> over one ttrpc connection, reopened after a failure.</summary>
internal sealed class TtrpcEventTransport(string address) : IEventTransport
{
    private TtrpcClient? _client;

    public string Name => "ttrpc";

    public async Task ForwardAsync(ForwardRequest request, string ns, DateTime deadline, CancellationToken cancellationToken)
    {
        _client ??= await TtrpcClient.ConnectAsync(address, cancellationToken: cancellationToken).ConfigureAwait(false);
        var events = new Contracts.Events.Events.EventsClient(_client);
        var headers = new Metadata { { "containerd-namespace-ttrpc", ns } };
        await events.ForwardAsync(request, headers, deadline, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask ResetAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync().ConfigureAwait(false);
            _client = null;
        }
    }

    public ValueTask DisposeAsync() => ResetAsync();
}
