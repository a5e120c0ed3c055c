using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using PluggableShim.Contracts.Events;

namespace PluggableShim.Ttrpc.Tests.Server;

public sealed class RoundTripTests
{
    private sealed class RecordingEvents : Events.EventsBase
    {
        public List<(Envelope Envelope, string? Namespace)> Seen { get; } = [];

        public override Task<Empty> Forward(ForwardRequest request, ServerCallContext context)
        {
            lock (Seen)
            {
                Seen.Add((request.Envelope, context.RequestHeaders.GetValue("containerd-namespace-ttrpc")));
            }

            return Task.FromResult(new Empty());
        }
    }

    [Fact]
    public async Task Generated_client_reaches_generated_service_with_metadata()
    {
        string path = Path.Combine(Path.GetTempPath(), $"ttrpc-{Guid.NewGuid():N}.sock");
        var service = new RecordingEvents();
        await using var server = new TtrpcServer();
        Events.BindService(server.Binder, service);
        server.Serve(TtrpcListener.ListenUnix(path));

        await using TtrpcClient client = await TtrpcClient.ConnectAsync("unix://" + path, cancellationToken: TestContext.Current.CancellationToken);
        var events = new Events.EventsClient(client);
        var headers = new Metadata { { "containerd-namespace-ttrpc", "ns1" } };
        await events.ForwardAsync(
            new ForwardRequest { Envelope = new Envelope { Topic = "/tasks/start", Namespace = "ns1" } },
            headers,
            cancellationToken: TestContext.Current.CancellationToken);

        var seen = Assert.Single(service.Seen);
        Assert.Equal("/tasks/start", seen.Envelope.Topic);
        Assert.Equal("ns1", seen.Namespace);
    }
}
