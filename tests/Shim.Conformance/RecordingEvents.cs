using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using PluggableShim.Contracts.Events;
using PluggableShim.Ttrpc;

namespace PluggableShim.Conformance;

/// <summary>
/// containerd's side of the events a shim publishes: our ttrpc server hosting
/// <c>containerd.services.events.ttrpc.v1.Events</c> at the path given to <c>start</c> as
/// <c>TTRPC_ADDRESS</c>, keeping every envelope in arrival order.
/// </summary>
public sealed class RecordingEvents : Contracts.Events.Events.EventsBase, IAsyncDisposable
{
    private readonly List<Envelope> _envelopes = [];
    private readonly TtrpcServer _server = new();

    private RecordingEvents(string socketPath)
    {
        SocketPath = socketPath;
    }

    /// <summary>The socket path (what <c>TTRPC_ADDRESS</c> holds).</summary>
    public string SocketPath { get; }

    /// <summary>Every envelope so far.</summary>
    public IReadOnlyList<Envelope> Envelopes
    {
        get
        {
            lock (_envelopes)
            {
                return [.. _envelopes];
            }
        }
    }

    /// <summary>Starts serving at <paramref name="socketPath"/>.</summary>
    public static RecordingEvents Listen(string socketPath)
    {
        var events = new RecordingEvents(socketPath);
        Contracts.Events.Events.BindService(events._server.Binder, events);
        events._server.Serve(TtrpcListener.ListenUnix(socketPath));
        return events;
    }

    /// <summary>The topics published for one container, in order.</summary>
    public IReadOnlyList<string> TopicsOf(string containerId) =>
        [.. Envelopes.Where(e => ContainerIdOf(e) == containerId).Select(e => e.Topic)];

    /// <summary>The one event of <paramref name="topic"/> for the container (and exec id, for exits), decoded.</summary>
    public T One<T>(string containerId, string topic, MessageParser<T> parser, Func<T, bool>? where = null)
        where T : IMessage<T>
    {
        T[] found = [.. Envelopes.Where(e => e.Topic == topic && ContainerIdOf(e) == containerId)
            .Select(e => parser.ParseFrom(e.Event.Value)).Where(m => where?.Invoke(m) ?? true)];
        return found.Length == 1
            ? found[0]
            : throw new Xunit.Sdk.XunitException($"expected one {topic} for {containerId}, got {found.Length}: {Describe()}");
    }

    /// <summary>Waits until the container's topics end with <paramref name="last"/> (then a moment more for strays), and returns them.</summary>
    public async Task<IReadOnlyList<string>> WaitForAsync(string containerId, string last, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!TopicsOf(containerId).Contains(last))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"no {last} event for {containerId} within {timeout.TotalSeconds:0} s; got {Describe()}");
            }

            await Task.Delay(20).ConfigureAwait(false);
        }

        // Events after this one would be out of order: give them a chance to show.
        await Task.Delay(100).ConfigureAwait(false);
        return TopicsOf(containerId);
    }

    /// <summary>All envelopes, for failure messages.</summary>
    public string Describe() => string.Join(", ", Envelopes.Select(e => $"{e.Topic}({ContainerIdOf(e)})"));

    /// <inheritdoc />
    public override Task<Empty> Forward(ForwardRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        lock (_envelopes)
        {
            _envelopes.Add(request.Envelope);
        }

        return Task.FromResult(new Empty());
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _server.DisposeAsync();

    // Every task event carries container_id as field 1; TaskPaused has only that field, so it
    // reads the id of any of them (the other fields are skipped as unknown).
    private static string ContainerIdOf(Envelope envelope) =>
        envelope.Event is null ? "" : TaskPaused.Parser.ParseFrom(envelope.Event.Value).ContainerId;
}
