using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using PluggableShim.Contracts.Events;
using PluggableShim.Testing.Containerd;

namespace PluggableShim.Ttrpc.Tests.Interop;

/// <summary>
/// Our <see cref="TtrpcClient"/> against containerd's own ttrpc server: events forwarded the way a
/// shim publishes them, and containerd's refusals as they come back over our client.
/// </summary>
public sealed class EventsForwardTests(ContainerdPeer peer) : IClassFixture<ContainerdPeer>
{
    private const string Namespace = "interop-events";
    private const string ExitTopic = "/tasks/exit";

    // containerd 1.6 resolves only the bare name in events (protocol §2), not type.googleapis.com/….
    private const string TaskExitTypeUrl = "containerd.events.TaskExit";

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Forwarded_TaskExit_with_a_bare_type_url_is_published_by_containerd()
    {
        LocalContainerd containerd = peer.Require();
        await using TtrpcClient client = await ConnectAsync(containerd);
        string containerId = UniqueId("exit");

        await ForwardAsync(client, ExitEnvelope(containerId, exitStatus: 137));

        RecordedEvent seen = await containerd.Events.WaitForAsync(
            e => e.Namespace == Namespace && e.Topic == ExitTopic && e.ContainerId == containerId, Patience, Token);
        Assert.Equal("137", seen.Property("exit_status"));
        Assert.Equal("4242", seen.Property("pid"));
        Assert.Equal(containerId + "-init", seen.Property("id"));
    }

    // containerd 1.6 checks the namespace, then the topic, then the timestamp. Only an absent
    // timestamp counts as zero: an explicit 1970-01-01 (seconds = 0) is accepted.
    public static TheoryData<string> BadEnvelopes =>
        ["topic without slash", "empty topic", "absent timestamp", "invalid namespace"];

    [Theory]
    [MemberData(nameof(BadEnvelopes))]
    public async Task Bad_envelope_is_refused_InvalidArgument_and_the_connection_keeps_working(string flaw)
    {
        LocalContainerd containerd = peer.Require();
        await using TtrpcClient client = await ConnectAsync(containerd);
        string refusedId = UniqueId("refused");
        Envelope bad = ExitEnvelope(refusedId, exitStatus: 1);
        switch (flaw)
        {
            case "topic without slash":
                bad.Topic = "tasks/exit";
                break;
            case "empty topic":
                bad.Topic = "";
                break;
            case "absent timestamp":
                bad.Timestamp = null;
                break;
            case "invalid namespace":
                bad.Namespace = "not a namespace!";
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(flaw), flaw, "no such flaw");
        }

        RpcException refused = await Assert.ThrowsAsync<RpcException>(() => ForwardAsync(client, bad));
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);

        // The same connection still carries a good event, and containerd publishes it.
        string acceptedId = UniqueId("after");
        await ForwardAsync(client, ExitEnvelope(acceptedId, exitStatus: 3));
        await containerd.Events.WaitForAsync(
            e => e.Namespace == Namespace && e.ContainerId == acceptedId, Patience, Token);

        // containerd publishes in the order it accepted, so the refused event would be in by now.
        Assert.DoesNotContain(containerd.Events.All, e => e.ContainerId == refusedId);
    }

    private static Task<TtrpcClient> ConnectAsync(LocalContainerd containerd) =>
        TtrpcClient.ConnectAsync("unix://" + containerd.TtrpcAddress, cancellationToken: Token);

    private static async Task ForwardAsync(TtrpcClient client, Envelope envelope)
    {
        var events = new Events.EventsClient(client);

        // A shim names its namespace in the metadata too, as containerd's own publisher does.
        var headers = new Metadata { { "containerd-namespace-ttrpc", Namespace } };
        await events.ForwardAsync(
            new ForwardRequest { Envelope = envelope },
            headers,
            DateTime.UtcNow + Patience,
            Token);
    }

    private static Envelope ExitEnvelope(string containerId, uint exitStatus)
    {
        DateTime now = DateTime.UtcNow;
        var exit = new TaskExit
        {
            ContainerId = containerId,
            Id = containerId + "-init",
            Pid = 4242,
            ExitStatus = exitStatus,
            ExitedAt = Timestamp.FromDateTime(now),
        };
        return new Envelope
        {
            Timestamp = Timestamp.FromDateTime(now),
            Namespace = Namespace,
            Topic = ExitTopic,
            Event = new Any { TypeUrl = TaskExitTypeUrl, Value = exit.ToByteString() },
        };
    }

    private static string UniqueId(string purpose) => $"interop-{purpose}-{Guid.NewGuid():N}"[..32];
}
