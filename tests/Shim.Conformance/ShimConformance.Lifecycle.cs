using PluggableShim.Contracts.Events;
using PluggableShim.Contracts.Task;
using Task = System.Threading.Tasks.Task;
using Status = PluggableShim.Contracts.Types.Status;

namespace PluggableShim.Conformance;

public abstract partial class ShimConformance<TTarget>
{
    /// <summary>created → running → stopped → deleted, seen through State, with the events in contract order.</summary>
    [Fact]
    public async Task A_task_goes_from_created_to_running_to_stopped_to_deleted_with_its_events_in_order()
    {
        await using LaunchedShim shim = await LaunchAsync("life", new ProcessBehavior { Stdout = ["hello"], Sleep = TimeSpan.FromMilliseconds(300) });
        using ClientIo io = await CreateAsync(shim);

        StateResponse created = await shim.Task.StateAsync(new StateRequest { Id = shim.Id }, cancellationToken: Token);
        Assert.Equal(Status.Created, created.Status);
        Assert.Equal(shim.Id, created.Id);
        Assert.Equal(shim.Bundle, created.Bundle);
        Assert.Equal(io.Stdout, created.Stdout);

        StartResponse started = await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        Assert.NotEqual(0u, started.Pid);
        StateResponse running = await shim.Task.StateAsync(new StateRequest { Id = shim.Id }, cancellationToken: Token);
        Assert.Equal(Status.Running, running.Status);
        Assert.Equal(started.Pid, running.Pid);
        await io.WaitForOutputAsync("hello\n", Bound);

        WaitResponse exited = await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        Assert.Equal(0u, exited.ExitStatus);
        StateResponse stopped = await shim.Task.StateAsync(new StateRequest { Id = shim.Id }, cancellationToken: Token);
        Assert.Equal(Status.Stopped, stopped.Status);
        Assert.Equal(exited.ExitedAt, stopped.ExitedAt);

        DeleteResponse deleted = await shim.Task.DeleteAsync(new DeleteRequest { Id = shim.Id }, cancellationToken: Token);
        Assert.Equal(started.Pid, deleted.Pid);
        await AssertStatusAsync(Grpc.Core.StatusCode.NotFound,
            shim.Task.StateAsync(new StateRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync, "State after Delete");

        IReadOnlyList<string> topics = await shim.Events.WaitForAsync(shim.Id, "/tasks/delete", Bound);
        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"], topics);
        TaskCreate create = shim.Events.One(shim.Id, "/tasks/create", TaskCreate.Parser);
        Assert.Equal(shim.Bundle, create.Bundle);
        Assert.Equal(io.Stdout, create.Io.Stdout);
        Assert.Equal(started.Pid, shim.Events.One(shim.Id, "/tasks/start", TaskStart.Parser).Pid);
        TaskExit exit = shim.Events.One(shim.Id, "/tasks/exit", TaskExit.Parser);
        Assert.Equal(shim.Id, exit.Id);
        Assert.Equal(started.Pid, exit.Pid);
        Assert.Equal(0u, exit.ExitStatus);

        await shim.Task.ShutdownAsync(new ShutdownRequest { Id = shim.Id }, cancellationToken: Token);
        await shim.WaitUntilGoneAsync(Bound);
    }

    /// <summary>
    /// <c>start</c> answers in the form the target's <see cref="ConformanceTarget.StartOutput"/> asks
    /// for (a plain address by default), and the Task API answers over the transport it names.
    /// </summary>
    [Fact]
    public async Task Start_answers_in_the_configured_form_and_the_task_api_answers_over_it()
    {
        await using LaunchedShim shim = await LaunchAsync("form", new ProcessBehavior { Sleep = TimeSpan.FromMilliseconds(100) });
        ShimAddress printed = shim.Connection.Printed;
        switch (Target.StartOutput)
        {
            case null or "address":
                Assert.False(printed.IsJson, $"expected a plain address, got {printed}");
                Assert.Equal("ttrpc", printed.Protocol);
                break;
            default:
                string[] parts = Target.StartOutput.Split('-'); // json-vN-PROTOCOL
                Assert.True(printed.IsJson, $"expected bootstrap JSON, got {printed}");
                Assert.Equal(int.Parse(parts[1][1..], System.Globalization.CultureInfo.InvariantCulture), printed.Version);
                Assert.Equal(parts[2], printed.Protocol);
                break;
        }

        // containerd dials a ttrpc address by its scheme (without unix:// Linux takes it as an
        // abstract socket), and a gRPC address as a raw path.
        if (printed.Protocol == "grpc")
        {
            Assert.True(Path.IsPathRooted(printed.Address) && !printed.Address.Contains("://", StringComparison.Ordinal),
                $"a gRPC address must be a raw absolute path, got \"{printed.Address}\"");
        }
        else
        {
            Assert.StartsWith("unix:///", printed.Address, StringComparison.Ordinal);
        }

        // The bundle's address file keeps the ttrpc address in every form; the daemon serves it.
        Assert.Equal("unix://" + shim.TtrpcSocketPath, File.ReadAllText(Path.Combine(shim.Bundle, "address")).Trim());
        Assert.True(File.Exists(shim.TtrpcSocketPath), $"no ttrpc socket at {shim.TtrpcSocketPath}");

        using ClientIo io = await CreateAsync(shim);
        ConnectResponse connected = await shim.Task.ConnectAsync(new ConnectRequest { Id = shim.Id }, cancellationToken: Token);
        Assert.NotEqual(0u, connected.ShimPid);
        await DeleteAndShutdownAsync(shim);
    }

    /// <summary>
    /// A launch whose <c>start</c> succeeded but whose answer cannot be driven (unparsable, or naming
    /// a socket nobody serves) stops the daemon <c>start</c> spawned, and leaves no socket, lock or bundle.
    /// </summary>
    [Theory]
    [InlineData("unparsable")]
    [InlineData("unreachable")]
    public async Task A_launch_whose_start_answer_cannot_be_driven_stops_its_daemon_and_leaves_nothing_behind(string answer)
    {
        RequireHost();
        string id = NewId("undriven");
        string bundle = "";
        string? socket = null;
        int[] daemons = [];
        using (new RewriteStartOutputScope((startedIn, _) =>
        {
            bundle = startedIn;
            socket = LaunchedShim.TtrpcSocketOf(startedIn);
            daemons = socket is null ? [] : [.. LaunchedShim.SocketHolders(socket)];
            return answer == "unparsable" ? """{"version":2,"address":""" : $"unix:///run/containerd/s/no-shim-{id}";
        }))
        {
            await Assert.ThrowsAnyAsync<Exception>(() =>
                LaunchedShim.StartAsync(Installation, id, ProcessBehavior.RunUntilKilled(), cancellationToken: Token));
        }

        Assert.NotNull(socket);
        Assert.NotEmpty(daemons); // start's daemon served the socket when start returned
        Assert.All(daemons, pid => Assert.False(LaunchedShim.IsAlive(pid), $"daemon {pid} outlived the failed launch"));
        Assert.Empty(LaunchedShim.Leftovers(socket, grpcSocket: null));
        Assert.False(Directory.Exists(bundle), $"bundle {bundle} left behind");
    }

    /// <summary>The process's own exit code reaches Wait, State, Delete and the exit and delete events.</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(255)]
    public async Task The_exit_code_is_reported_by_Wait_State_Delete_and_the_events(int code)
    {
        await using LaunchedShim shim = await LaunchAsync("code", ProcessBehavior.ExitWith(code));
        using ClientIo io = await CreateAsync(shim);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);

        WaitResponse exited = await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        StateResponse state = await shim.Task.StateAsync(new StateRequest { Id = shim.Id }, cancellationToken: Token);
        DeleteResponse deleted = await shim.Task.DeleteAsync(new DeleteRequest { Id = shim.Id }, cancellationToken: Token);

        Assert.Equal((uint)code, exited.ExitStatus);
        Assert.Equal((uint)code, state.ExitStatus);
        Assert.Equal((uint)code, deleted.ExitStatus);
        await shim.Events.WaitForAsync(shim.Id, "/tasks/delete", Bound);
        Assert.Equal((uint)code, shim.Events.One(shim.Id, "/tasks/exit", TaskExit.Parser).ExitStatus);
        Assert.Equal((uint)code, shim.Events.One(shim.Id, "/tasks/delete", TaskDelete.Parser).ExitStatus);
        await shim.Task.ShutdownAsync(new ShutdownRequest { Id = shim.Id }, cancellationToken: Token);
        await shim.WaitUntilGoneAsync(Bound);
    }

    /// <summary>A process ended by a signal exits with 128 + the signal.</summary>
    [Theory]
    [InlineData(9)]
    [InlineData(15)]
    public async Task A_signalled_process_exits_with_128_plus_the_signal(uint signal)
    {
        await using LaunchedShim shim = await LaunchAsync("sig", ProcessBehavior.RunUntilKilled("up"));
        using ClientIo io = await CreateAsync(shim);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        await io.WaitForOutputAsync("up\n", Bound);

        await shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = signal }, cancellationToken: Token);
        WaitResponse exited = await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);

        Assert.Equal(128 + signal, exited.ExitStatus);
        await DeleteAndShutdownAsync(shim);
    }

    /// <summary>Wait sent before Start (as ctr does) blocks until the process exits, and answers its status.</summary>
    [Fact]
    public async Task Wait_blocks_until_the_process_exits()
    {
        await using LaunchedShim shim = await LaunchAsync("wait", ProcessBehavior.RunUntilKilled("up"));
        using ClientIo io = await CreateAsync(shim);
        Task<WaitResponse> wait = shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync;

        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        await io.WaitForOutputAsync("up\n", Bound);
        await Task.Delay(300, Token);
        Assert.False(wait.IsCompleted, "Wait answered while the process was still running");

        await shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        WaitResponse exited = await wait.WaitAsync(Bound, Token);
        Assert.Equal(137u, exited.ExitStatus);
        Assert.NotNull(exited.ExitedAt);
        await DeleteAndShutdownAsync(shim);
    }

    /// <summary>Wait for a process that has exited answers at once, with the same status and time each time.</summary>
    [Fact]
    public async Task Wait_returns_at_once_for_a_process_that_already_exited()
    {
        await using LaunchedShim shim = await LaunchAsync("waited", ProcessBehavior.ExitWith(7));
        using ClientIo io = await CreateAsync(shim);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        WaitResponse first = await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);

        WaitResponse again = await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token)
            .ResponseAsync.WaitAsync(TimeSpan.FromSeconds(2), Token);

        Assert.Equal(7u, again.ExitStatus);
        Assert.Equal(first.ExitedAt, again.ExitedAt);
        await DeleteAndShutdownAsync(shim);
    }

    /// <summary>Connect answers the daemon's pid, and the task's pid once it runs (containerd reconnects with it).</summary>
    [Fact]
    public async Task Connect_answers_the_shim_pid_and_the_task_pid()
    {
        await using LaunchedShim shim = await LaunchAsync("conn", ProcessBehavior.RunUntilKilled());
        using ClientIo io = await CreateAsync(shim);
        StartResponse started = await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);

        await using ShimConnection second = await shim.Connection.ReconnectAsync(Token);
        ConnectResponse connected = await second.Task.ConnectAsync(new ConnectRequest { Id = shim.Id }, cancellationToken: Token);

        Assert.True(LaunchedShim.IsAlive((int)connected.ShimPid), $"shim pid {connected.ShimPid} is not a live process");
        Assert.Equal(started.Pid, connected.TaskPid);
        await shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        await DeleteAndShutdownAsync(shim);
    }

    /// <summary>
    /// Shutdown while a task is left changes nothing; after the last Delete it ends the daemon,
    /// which removes its sockets (ttrpc, and gRPC in gRPC mode) and the ttrpc socket's lock, and no
    /// process of the task is left.
    /// </summary>
    [Fact]
    public async Task Shutdown_ends_the_daemon_only_once_no_task_is_left_and_leaves_nothing_behind()
    {
        await using LaunchedShim shim = await LaunchAsync("shut", ProcessBehavior.RunUntilKilled());
        using ClientIo io = await CreateAsync(shim);
        StartResponse started = await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);

        await shim.Task.ShutdownAsync(new ShutdownRequest { Id = shim.Id }, cancellationToken: Token);
        await Task.Delay(300, Token);
        Assert.True(LaunchedShim.IsAlive(shim.DaemonPid), "the daemon exited with a task left");
        // What must be gone at the end is there while the daemon serves: its sockets and lock.
        Assert.True(File.Exists(shim.TtrpcSocketPath), $"no ttrpc socket at {shim.TtrpcSocketPath}");
        Assert.True(File.Exists(shim.TtrpcSocketPath + ".lock"), $"no lock at {shim.TtrpcSocketPath}.lock");
        if (shim.GrpcSocketPath is { } grpcSocket)
        {
            Assert.True(File.Exists(grpcSocket), $"no gRPC socket at {grpcSocket}");
        }

        StateResponse state = await shim.Task.StateAsync(new StateRequest { Id = shim.Id }, cancellationToken: Token);
        Assert.Equal(Status.Running, state.Status);

        await shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        await DeleteAndShutdownAsync(shim);
        Assert.Empty(shim.LeftBehind());
        if (Target.ReportsHostPids)
        {
            Assert.False(LaunchedShim.IsAlive((int)started.Pid), $"the task's process {started.Pid} outlived its shim");
        }
    }
}
