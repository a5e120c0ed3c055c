using Microsoft.Extensions.Logging.Abstractions;
using PluggableShim.Contracts.Events;
using PluggableShim.Host.Events;
using PluggableShim.Host.Tests.Support;

namespace PluggableShim.Host.Tests.Events;

/// <summary>
/// Events over gRPC (a daemon in gRPC mode, <c>GRPC_ADDRESS</c>) against a gRPC Events server in
/// the test: containerd 1.6, the only one here, takes no gRPC shim. The retry loop is the one the
/// ttrpc publisher uses (<see cref="EventPublisher"/>).
/// </summary>
public sealed class GrpcEventDeliveryTests : IDisposable
{
    private const string Ns = "grpc-events";
    private readonly string _socket = Path.Combine(Path.GetTempPath(), $"psh-gev-{Guid.NewGuid():N}.sock");

    public void Dispose() => File.Delete(_socket);

    [Fact]
    public async Task Events_arrive_in_order_with_the_namespace_and_bare_type_names()
    {
        await using GrpcEventsServer server = await GrpcEventsServer.StartAsync(_socket);
        var publisher = new GrpcEventPublisher(_socket, Ns, TimeProvider.System, NullLogger<GrpcEventPublisher>.Instance);
        await using var disposePublisher = publisher.ConfigureAwait(false);

        publisher.Publish(EventTopics.Create, new TaskCreate { ContainerId = "c", Bundle = "/b", Pid = 7 });
        publisher.Publish(EventTopics.Start, new TaskStart { ContainerId = "c", Pid = 7 });
        publisher.Publish(EventTopics.Exit, new TaskExit { ContainerId = "c", Id = "c", Pid = 7, ExitStatus = 3 });
        publisher.Publish(EventTopics.Delete, new TaskDelete { ContainerId = "c", Pid = 7, ExitStatus = 3 });
        await publisher.FlushAsync(TimeSpan.FromSeconds(10));

        var received = server.Received.All;
        Assert.Equal([EventTopics.Create, EventTopics.Start, EventTopics.Exit, EventTopics.Delete], received.Select(r => r.Envelope.Topic));
        Assert.All(received, r => Assert.Equal(Ns, r.Namespace));
        Assert.All(received, r => Assert.Equal(Ns, r.Envelope.Namespace));
        Assert.Equal("containerd.events.TaskExit", received[2].Envelope.Event.TypeUrl);
        Assert.Equal(3u, TaskExit.Parser.ParseFrom(received[2].Envelope.Event.Value).ExitStatus);
        Assert.All(received, r => Assert.NotEqual(0, r.Envelope.Timestamp.Seconds));
    }

    [Fact]
    public async Task Events_published_before_containerd_listens_are_retried_until_it_does()
    {
        var publisher = new GrpcEventPublisher(_socket, Ns, TimeProvider.System, NullLogger<GrpcEventPublisher>.Instance);
        await using var disposePublisher = publisher.ConfigureAwait(false);
        publisher.Publish(EventTopics.Create, new TaskCreate { ContainerId = "early" });
        publisher.Publish(EventTopics.Start, new TaskStart { ContainerId = "early" });
        await Task.Delay(500, TestContext.Current.CancellationToken); // several failed attempts

        await using GrpcEventsServer server = await GrpcEventsServer.StartAsync(_socket);
        await publisher.FlushAsync(TimeSpan.FromSeconds(15));

        Assert.Equal([EventTopics.Create, EventTopics.Start], server.Received.All.Select(r => r.Envelope.Topic));
    }

    [Fact]
    public async Task An_event_containerd_refuses_is_dropped_and_the_next_one_still_goes()
    {
        await using GrpcEventsServer server = await GrpcEventsServer.StartAsync(_socket, refuseTopic: EventTopics.Paused);
        var publisher = new GrpcEventPublisher(_socket, Ns, TimeProvider.System, NullLogger<GrpcEventPublisher>.Instance);
        await using var disposePublisher = publisher.ConfigureAwait(false);

        publisher.Publish(EventTopics.Paused, new TaskPaused { ContainerId = "c" });
        publisher.Publish(EventTopics.Resumed, new TaskResumed { ContainerId = "c" });
        await publisher.FlushAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([EventTopics.Resumed], server.Received.All.Select(r => r.Envelope.Topic));
    }
}
