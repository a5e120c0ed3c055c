using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using PluggableShim.Contracts.Events;
using PluggableShim.Host.Events;

namespace PluggableShim.Host.Tests.Events;

/// <summary>
/// What the send loop does with each kind of failure, over a scripted transport (the real
/// transports are tested against real servers beside this): transport breakage is retried, a
/// refusal drops one event, and a fault of ours drops one event without ending the loop.
/// </summary>
public sealed class EventRetryPolicyTests
{
    private sealed class ScriptedTransport(Func<string, int, Exception?> failure) : IEventTransport
    {
        private readonly Dictionary<string, int> _attempts = [];

        public List<string> Delivered { get; } = [];

        public string Name => "scripted";

        public Task ForwardAsync(ForwardRequest request, string ns, DateTime deadline, CancellationToken cancellationToken)
        {
            string topic = request.Envelope.Topic;
            int attempt = _attempts[topic] = _attempts.GetValueOrDefault(topic) + 1;
            if (failure(topic, attempt) is { } ex)
            {
                throw ex;
            }

            Delivered.Add(topic);
            return Task.CompletedTask;
        }

        public ValueTask ResetAsync() => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private static async Task<List<string>> PublishThreeAsync(Func<string, int, Exception?> failure)
    {
        var transport = new ScriptedTransport(failure);
        var publisher = new EventPublisher(transport, "ns", TimeProvider.System, NullLogger.Instance);
        await using var dispose = publisher.ConfigureAwait(false);
        publisher.Publish("/tasks/create", new TaskCreate { ContainerId = "c" });
        publisher.Publish("/tasks/start", new TaskStart { ContainerId = "c" });
        publisher.Publish("/tasks/delete", new TaskDelete { ContainerId = "c" });
        await publisher.FlushAsync(TimeSpan.FromSeconds(10));
        return transport.Delivered;
    }

    [Fact]
    public async Task A_grpc_call_broken_by_the_transport_is_retried_even_though_its_status_is_internal()
    {
        var broken = new RpcException(new Status(StatusCode.Internal, "HTTP/2 protocol error", new HttpRequestException("reset")));
        List<string> delivered = await PublishThreeAsync((topic, attempt) => topic == "/tasks/start" && attempt < 3 ? broken : null);
        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/delete"], delivered);
    }

    [Fact]
    public async Task An_internal_status_from_containerd_itself_drops_that_event_only()
    {
        var refused = new RpcException(new Status(StatusCode.Internal, "containerd could not store it"));
        List<string> delivered = await PublishThreeAsync((topic, _) => topic == "/tasks/start" ? refused : null);
        Assert.Equal(["/tasks/create", "/tasks/delete"], delivered);
    }

    [Fact]
    public async Task A_fault_of_ours_drops_that_event_and_the_loop_goes_on_and_flushes()
    {
        List<string> delivered = await PublishThreeAsync(
            (topic, _) => topic == "/tasks/create" ? new ArgumentException("no such address form") : null);
        Assert.Equal(["/tasks/start", "/tasks/delete"], delivered);
    }

    [Theory]
    [InlineData(StatusCode.Unavailable, true)]
    [InlineData(StatusCode.DeadlineExceeded, true)]
    [InlineData(StatusCode.InvalidArgument, false)]
    [InlineData(StatusCode.Internal, false)]
    [InlineData(StatusCode.Unknown, false)]
    public void Only_unreachable_or_slow_is_transient_without_a_transport_exception(StatusCode code, bool transient) =>
        Assert.Equal(transient, EventPublisher.IsTransient(new RpcException(new Status(code, "x"))));
}
