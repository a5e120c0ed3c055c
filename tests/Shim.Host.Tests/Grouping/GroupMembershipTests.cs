using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using PluggableShim.Abstractions;
using PluggableShim.Host.Grouping;
using PluggableShim.Host.Tasks;

namespace PluggableShim.Host.Tests.Grouping;

public sealed class GroupMembershipTests : IDisposable
{
    private readonly ShimLifetime _lifetime = new();
    private readonly FakeTimeProvider _time = new();
    private readonly string _directory = Directory.CreateTempSubdirectory("psh-group-unit-").FullName;

    private static ShimOptions Options => new()
    {
        Namespace = "test",
        Plugin = new PluginInfo("fake", "1.0.0", "unit"),
    };

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private GroupMembership Create(string? socketPath = null, Action? withdraw = null) =>
        new(_lifetime, Options, _time, NullLogger<GroupMembership>.Instance, socketPath, withdraw: withdraw);

    [Fact]
    public async Task Shutdown_with_a_joined_container_still_to_create_keeps_the_daemon()
    {
        using GroupMembership membership = Create();
        membership.TaskAdded("sandbox");
        Assert.Equal(2, membership.Join("app", "fake", bundle: null));

        membership.TaskRemoved("sandbox");
        membership.ShutdownRequested("sandbox");
        await Task.Delay(100, TestContext.Current.CancellationToken);
        Assert.False(_lifetime.ExitRequested.IsCompleted, "exited with a joined container on its way");

        membership.TaskAdded("app");
        membership.TaskRemoved("app");
        membership.ShutdownRequested("app");
        Assert.Contains("app", await _lifetime.ExitRequested.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task A_reservation_that_is_never_claimed_lapses_and_an_idle_daemon_exits()
    {
        using GroupMembership membership = Create();
        membership.Join("first", "fake", bundle: null);

        _time.Advance(GroupMembership.ReservationTimeout - TimeSpan.FromSeconds(1));
        Assert.False(_lifetime.ExitRequested.IsCompleted);
        Assert.Equal(1, membership.Members);

        _time.Advance(TimeSpan.FromSeconds(2));
        string reason = await _lifetime.ExitRequested.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        Assert.Contains("first", reason, StringComparison.Ordinal);
        Assert.Equal(0, membership.Members);
    }

    [Fact]
    public void A_claimed_reservation_does_not_lapse()
    {
        using GroupMembership membership = Create();
        membership.Join("first", "fake", bundle: null);
        membership.TaskAdded("first");

        _time.Advance(GroupMembership.ReservationTimeout * 2);

        Assert.False(_lifetime.ExitRequested.IsCompleted);
        Assert.Equal(1, membership.Members);
    }

    [Fact]
    public void Joining_with_another_plugin_is_failed_precondition_naming_both()
    {
        using GroupMembership membership = Create();

        var error = Assert.Throws<FailedPreconditionException>(() => membership.Join("app", "runhcs", bundle: null));

        Assert.Contains("runhcs", error.Message, StringComparison.Ordinal);
        Assert.Contains("fake", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, membership.Members);
    }

    [Fact]
    public async Task Exiting_removes_the_socket_and_lock_and_refuses_later_joins()
    {
        string socket = Path.Combine(_directory, "shim.sock");
        await File.WriteAllTextAsync(socket, "", TestContext.Current.CancellationToken);
        using GroupMembership membership = Create(socket);

        membership.ShutdownRequested("last");
        await _lifetime.ExitRequested.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);

        Assert.False(File.Exists(socket));
        Assert.False(File.Exists(GroupLock.PathFor(socket)));
        Assert.Null(membership.Join("late", "fake", bundle: null));
    }

    [Fact]
    public async Task Two_shutdowns_at_once_leave_neither_socket_nor_lock_behind()
    {
        string socket = Path.Combine(_directory, "shim.sock");
        await File.WriteAllTextAsync(socket, "", TestContext.Current.CancellationToken);
        using GroupMembership membership = Create(socket);

        membership.ShutdownRequested("a");
        membership.ShutdownRequested("b");
        await _lifetime.ExitRequested.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        await Task.Delay(300, TestContext.Current.CancellationToken); // the second decision runs to its end

        Assert.False(File.Exists(socket));
        Assert.False(File.Exists(GroupLock.PathFor(socket)), "the second exit decision re-created the lock file");
    }

    [Fact]
    public async Task The_daemon_does_not_decide_to_exit_while_a_start_holds_the_group_lock()
    {
        string socket = Path.Combine(_directory, "shim.sock");
        await File.WriteAllTextAsync(socket, "", TestContext.Current.CancellationToken);
        using GroupMembership membership = Create(socket);

        using (await GroupLock.AcquireAsync(GroupLock.PathFor(socket), TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken))
        {
            membership.ShutdownRequested("last");
            await Task.Delay(200, TestContext.Current.CancellationToken);
            Assert.True(File.Exists(socket), "socket removed while a start held the lock");

            // What start does under the lock: join. The exit decision then finds a member.
            Assert.Equal(1, membership.Join("app", "fake", bundle: null));
        }

        await Task.Delay(200, TestContext.Current.CancellationToken);
        Assert.False(_lifetime.ExitRequested.IsCompleted);
        Assert.True(File.Exists(socket));
    }

    [Fact]
    public async Task Exiting_without_the_group_lock_still_withdraws_the_pipe_but_leaves_the_paths()
    {
        // The lock cannot be taken (its folder is gone): the daemon exits all the same, and must
        // stop listening, or a successor would serve the same pipe name beside it.
        string socket = Path.Combine(_directory, "gone", "shim.sock");
        int withdrawn = 0;
        using GroupMembership membership = Create(socket, () => Interlocked.Increment(ref withdrawn));

        membership.ShutdownRequested("last");
        await _lifetime.ExitRequested.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);

        Assert.Equal(1, Volatile.Read(ref withdrawn));
        Assert.Null(membership.Join("late", "fake", bundle: null));
    }
}
