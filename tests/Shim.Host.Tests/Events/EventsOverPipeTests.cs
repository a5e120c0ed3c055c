using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using PluggableShim.Contracts.Events;
using PluggableShim.Host.Events;
using PluggableShim.Ttrpc;

namespace PluggableShim.Host.Tests.Events;

/// <summary>
/// On Windows <c>TTRPC_ADDRESS</c> is containerd's pipe (<c>\\.\pipe\containerd-containerd.ttrpc</c>):
/// the publisher dials it. Here an Events service is served on a named pipe (.NET's emulation),
/// taken down and brought back as a restarting containerd would be.
/// </summary>
public sealed class EventsOverPipeTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private sealed class RecordingEvents : Contracts.Events.Events.EventsBase
    {
        private readonly Lock _gate = new();
        private readonly List<(string Topic, string? Namespace)> _seen = [];

        public IReadOnlyList<(string Topic, string? Namespace)> Seen
        {
            get
            {
                lock (_gate)
                {
                    return [.. _seen];
                }
            }
        }

        public override Task<Empty> Forward(ForwardRequest request, ServerCallContext context)
        {
            lock (_gate)
            {
                _seen.Add((request.Envelope.Topic, context.RequestHeaders.GetValue("containerd-namespace-ttrpc")));
            }

            return Task.FromResult(new Empty());
        }
    }

    private static TtrpcServer Serve(string pipe, RecordingEvents events)
    {
        var server = new TtrpcServer();
        Contracts.Events.Events.BindService(server.Binder, events);
        server.Serve(TtrpcListener.ListenNamedPipe(pipe));
        return server;
    }

    [Fact]
    public async Task Events_reach_a_pipe_address_in_order_also_across_a_restart_of_the_server()
    {
        string pipe = $"psh-events-{Guid.NewGuid().ToString("N")[..12]}.ttrpc";
        var before = new RecordingEvents();
        TtrpcServer first = Serve(pipe, before);
        var publisher = new TtrpcEventPublisher(@"\\.\pipe\" + pipe, "pipe-ns", TimeProvider.System, NullLogger<TtrpcEventPublisher>.Instance);
        await using var disposePublisher = publisher.ConfigureAwait(false);

        publisher.Publish("/tasks/create", new TaskCreate { ContainerId = "c", Bundle = "/b" });
        publisher.Publish("/tasks/start", new TaskStart { ContainerId = "c", Pid = 7 });
        for (int i = 0; i < 200 && before.Seen.Count < 2; i++)
        {
            await Task.Delay(50, Token);
        }

        Assert.Equal([("/tasks/create", "pipe-ns"), ("/tasks/start", "pipe-ns")], before.Seen);

        // containerd restarts: its pipe goes, events wait, and reach the new one in order.
        await first.DisposeAsync();
        publisher.Publish("/tasks/exit", new TaskExit { ContainerId = "c", Id = "c", Pid = 7, ExitStatus = 1, ExitedAt = Timestamp.FromDateTime(DateTime.UtcNow) });
        publisher.Publish("/tasks/delete", new TaskDelete { ContainerId = "c", Pid = 7, ExitStatus = 1 });
        await Task.Delay(500, Token);
        var after = new RecordingEvents();
        await using TtrpcServer second = Serve(pipe, after);
        await publisher.FlushAsync(TimeSpan.FromSeconds(20)); // the shim's last act: everything queued goes out

        Assert.Equal(["/tasks/exit", "/tasks/delete"], after.Seen.Select(e => e.Topic));
    }
}
