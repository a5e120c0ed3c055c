using Microsoft.Extensions.Logging.Abstractions;
using PluggableShim.Contracts.Events;
using PluggableShim.Host.Events;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;

namespace PluggableShim.Host.Tests.Events;

/// <summary>
/// The publisher against a real containerd whose ttrpc socket goes away: every event must
/// still arrive, in order, and none may be lost when the shim flushes on its way out.
/// containerd's socket is reached through a proxy the test takes down and brings back, cutting
/// the publisher's connection as a containerd restart would.
/// </summary>
public sealed class EventDeliveryTests : IAsyncLifetime
{
    private const string Ns = "events-delivery";
    private LocalContainerd? _containerd;
    private UnixSocketProxy? _proxy;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        if (LocalContainerd.Unavailable() is null)
        {
            _containerd = await LocalContainerd.StartAsync(cancellationToken: Token);
            _proxy = new UnixSocketProxy(
                Path.Combine(Path.GetTempPath(), $"psh-ev-{Guid.NewGuid():N}.sock"), _containerd.TtrpcAddress);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_proxy is not null)
        {
            await _proxy.DisposeAsync();
        }

        if (_containerd is not null)
        {
            await _containerd.DisposeAsync();
        }
    }

    [Fact]
    public async Task Events_published_while_containerd_is_unreachable_arrive_in_order_once_it_is_back()
    {
        LocalContainerd.SkipUnlessAvailable();
        LocalContainerd containerd = _containerd!;
        UnixSocketProxy proxy = _proxy!;
        proxy.Up();
        var publisher = new TtrpcEventPublisher(proxy.Path, Ns, TimeProvider.System, NullLogger<TtrpcEventPublisher>.Instance);
        await using var disposePublisher = publisher.ConfigureAwait(false);

        publisher.Publish("/tasks/create", new TaskCreate { ContainerId = "before", Bundle = "/b" });
        await containerd.Events.WaitForAsync(e => e.ContainerId == "before", TimeSpan.FromSeconds(10), Token);

        // containerd goes away: the connection is cut and new ones are refused.
        proxy.Down();
        string id = "outage";
        publisher.Publish("/tasks/create", new TaskCreate { ContainerId = id, Bundle = "/b" });
        publisher.Publish("/tasks/start", new TaskStart { ContainerId = id, Pid = 42 });
        publisher.Publish("/tasks/exit", new TaskExit { ContainerId = id, Id = id, Pid = 42, ExitStatus = 3, ExitedAt = Now() });
        await Task.Delay(TimeSpan.FromSeconds(2), Token);
        Assert.Empty(containerd.Events.For(Ns, id));

        proxy.Up();
        await containerd.Events.WaitForAsync(e => e.ContainerId == id && e.Topic == "/tasks/exit", TimeSpan.FromSeconds(15), Token);

        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exit"], containerd.Events.For(Ns, id).Select(e => e.Topic));
        Assert.Equal("3", containerd.Events.For(Ns, id)[2].Property("exit_status"));
    }

    [Fact]
    public async Task Flush_at_shutdown_waits_for_containerd_to_come_back_and_loses_nothing()
    {
        LocalContainerd.SkipUnlessAvailable();
        LocalContainerd containerd = _containerd!;
        UnixSocketProxy proxy = _proxy!;
        var publisher = new TtrpcEventPublisher(proxy.Path, Ns, TimeProvider.System, NullLogger<TtrpcEventPublisher>.Instance);
        await using var disposePublisher = publisher.ConfigureAwait(false);
        string id = "flush";
        for (uint pid = 1; pid <= 20; pid++)
        {
            publisher.Publish("/tasks/exec-started", new TaskExecStarted { ContainerId = id, ExecId = $"e{pid}", Pid = pid });
        }

        publisher.Publish("/tasks/delete", new TaskDelete { ContainerId = id, Pid = 1, ExitStatus = 0, ExitedAt = Now() });

        Task flushed = publisher.FlushAsync(TimeSpan.FromSeconds(20));
        await Task.Delay(TimeSpan.FromSeconds(1), Token);
        Assert.False(flushed.IsCompleted, "flush returned while containerd was unreachable");
        proxy.Up();
        await flushed.WaitAsync(TimeSpan.FromSeconds(20), Token);

        // Flush returns once containerd accepted the last one; ctr events may print it a moment later.
        await containerd.Events.WaitForAsync(e => e.ContainerId == id && e.Topic == "/tasks/delete", TimeSpan.FromSeconds(10), Token);
        string[] expected = [.. Enumerable.Range(1, 20).Select(i => $"e{i}"), "delete"];
        Assert.Equal(expected, containerd.Events.For(Ns, id).Select(e => e.Property("exec_id") ?? "delete"));
    }

    private static Google.Protobuf.WellKnownTypes.Timestamp Now() =>
        Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow);
}
