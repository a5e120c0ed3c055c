using System.Text;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using PluggableShim.Abstractions;
using PluggableShim.Contracts.Events;
using PluggableShim.Contracts.Task;
using PluggableShim.Host.Tests.Support;
using Task = System.Threading.Tasks.Task;
using WireStatus = PluggableShim.Contracts.Types.Status;

namespace PluggableShim.Host.Tests.Tasks;

/// <summary>
/// The Task API through the wire, once per transport: ttrpc and gRPC, each as
/// <c>containerd.task.v2.Task</c> and <c>containerd.task.v3.Task</c>, all on one service.
/// </summary>
public sealed class TaskApiTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public static TheoryData<string, string> UnknownTaskCalls =>
        TaskApiHarness.WithTransports(["State", "Start", "Kill", "Delete", "Wait", "Pids", "CloseIO"]);

    public static TheoryData<string, string> EscapingIds => TaskApiHarness.WithTransports(["../etc", "a/b", "-x", "a..b", ""]);

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Lifecycle_publishes_create_start_exit_delete_in_order(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        ScriptedContainer container = await shim.CreateAsync("c1");

        StartResponse started = await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);
        Assert.True(started.Pid > 0);
        container.InitProcess.Exit(3);
        WaitResponse waited = await shim.Client.WaitAsync(new WaitRequest { Id = "c1" }, cancellationToken: Token);
        DeleteResponse deleted = await shim.Client.DeleteAsync(new DeleteRequest { Id = "c1" }, cancellationToken: Token);

        Assert.Equal(3u, waited.ExitStatus);
        Assert.Equal(3u, deleted.ExitStatus);
        Assert.Equal(started.Pid, deleted.Pid);
        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"], shim.Events.Topics);
        var exit = (TaskExit)shim.Events.Events[2].Event;
        Assert.Equal("c1", exit.ContainerId);
        Assert.Equal("c1", exit.Id);
        Assert.Equal(3u, exit.ExitStatus);
        Assert.True(container.Disposed);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Wait_before_start_blocks_until_the_process_exits(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        ScriptedContainer container = await shim.CreateAsync("c1");

        Task<WaitResponse> wait = shim.Client.WaitAsync(new WaitRequest { Id = "c1" }, cancellationToken: Token).ResponseAsync;
        await Task.Delay(200, Token);
        Assert.False(wait.IsCompleted);

        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);
        Assert.False(wait.IsCompleted);
        container.InitProcess.Exit(0);
        WaitResponse response = await wait.WaitAsync(TimeSpan.FromSeconds(10), Token);
        Assert.Equal(0u, response.ExitStatus);
        Assert.NotNull(response.ExitedAt);

        // Wait after the exit answers at once with the same status.
        WaitResponse again = await shim.Client.WaitAsync(new WaitRequest { Id = "c1" }, cancellationToken: Token);
        Assert.Equal(response.ExitedAt, again.ExitedAt);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task A_process_that_exits_during_start_reports_start_before_exit(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        ScriptedContainer container = await shim.CreateAsync("c1");
        container.InitProcess.ExitOnStart = 0;

        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);
        await shim.Client.WaitAsync(new WaitRequest { Id = "c1" }, cancellationToken: Token);

        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exit"], shim.Events.Topics);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Kill_reports_128_plus_signal_and_kill_after_exit_is_not_found(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        await shim.CreateAsync("c1");
        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);

        await shim.Client.KillAsync(new KillRequest { Id = "c1", Signal = 9 }, cancellationToken: Token);
        WaitResponse waited = await shim.Client.WaitAsync(new WaitRequest { Id = "c1" }, cancellationToken: Token);
        Assert.Equal(137u, waited.ExitStatus);

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.KillAsync(new KillRequest { Id = "c1", Signal = 9 }, cancellationToken: Token).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Kill_all_is_passed_to_the_plugin(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        ScriptedContainer container = await shim.CreateAsync("c1");
        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);

        await shim.Client.KillAsync(new KillRequest { Id = "c1", Signal = 15, All = true }, cancellationToken: Token);

        Assert.Equal([(15, true)], container.InitProcess.Signals);
    }

    [Theory]
    [MemberData(nameof(UnknownTaskCalls))]
    public async Task Unknown_task_is_not_found(string method, string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        Func<Task> call = method switch
        {
            "State" => () => shim.Client.StateAsync(new StateRequest { Id = "nope" }, cancellationToken: Token).ResponseAsync,
            "Start" => () => shim.Client.StartAsync(new StartRequest { Id = "nope" }, cancellationToken: Token).ResponseAsync,
            "Kill" => () => shim.Client.KillAsync(new KillRequest { Id = "nope", Signal = 9 }, cancellationToken: Token).ResponseAsync,
            "Delete" => () => shim.Client.DeleteAsync(new DeleteRequest { Id = "nope" }, cancellationToken: Token).ResponseAsync,
            "Wait" => () => shim.Client.WaitAsync(new WaitRequest { Id = "nope" }, cancellationToken: Token).ResponseAsync,
            "Pids" => () => shim.Client.PidsAsync(new PidsRequest { Id = "nope" }, cancellationToken: Token).ResponseAsync,
            _ => () => shim.Client.CloseIOAsync(new CloseIORequest { Id = "nope", Stdin = true }, cancellationToken: Token).ResponseAsync,
        };

        var error = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Unknown_exec_is_not_found(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        await shim.CreateAsync("c1");

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.StateAsync(new StateRequest { Id = "c1", ExecId = "e9" }, cancellationToken: Token).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Duplicate_create_is_already_exists_and_the_shim_keeps_serving(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        await shim.CreateAsync("c1");

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.CreateAsync(new CreateTaskRequest { Id = "c1", Bundle = shim.Bundle }, cancellationToken: Token).ResponseAsync);
        Assert.Equal(StatusCode.AlreadyExists, error.StatusCode);

        StateResponse state = await shim.Client.StateAsync(new StateRequest { Id = "c1" }, cancellationToken: Token);
        Assert.Equal(WireStatus.Created, state.Status);
    }

    [Theory]
    [MemberData(nameof(EscapingIds))]
    public async Task Ids_that_could_escape_a_path_are_invalid(string id, string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.CreateAsync(new CreateTaskRequest { Id = id, Bundle = shim.Bundle }, cancellationToken: Token).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Empty(shim.Runtime.Containers);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Too_long_id_is_invalid(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.CreateAsync(new CreateTaskRequest { Id = new string('a', 77), Bundle = shim.Bundle }, cancellationToken: Token).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Relative_or_missing_bundle_is_invalid(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);

        var relative = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.CreateAsync(new CreateTaskRequest { Id = "c1", Bundle = "bundle" }, cancellationToken: Token).ResponseAsync);
        var missing = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.CreateAsync(new CreateTaskRequest { Id = "c1", Bundle = "/nonexistent/bundle" }, cancellationToken: Token).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, relative.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, missing.StatusCode);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Failed_create_frees_the_id(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        shim.Runtime.FailCreate = _ => new InvalidArgumentException("bad spec");

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.CreateAsync(new CreateTaskRequest { Id = "c1", Bundle = shim.Bundle }, cancellationToken: Token).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("bad spec", error.Status.Detail, StringComparison.Ordinal);

        Assert.Empty(shim.Events.Topics);
        shim.Runtime.FailCreate = _ => null;
        await shim.CreateAsync("c1");
        Assert.Equal(["/tasks/create"], shim.Events.Topics);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task A_plugin_crash_is_unknown_with_its_message_and_the_shim_keeps_serving(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        shim.Runtime.FailCreate = _ => new InvalidOperationException("plugin blew up");

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.CreateAsync(new CreateTaskRequest { Id = "c1", Bundle = shim.Bundle }, cancellationToken: Token).ResponseAsync);
        Assert.Equal(StatusCode.Unknown, error.StatusCode);
        Assert.Contains("plugin blew up", error.Status.Detail, StringComparison.Ordinal);

        ConnectResponse connect = await shim.Client.ConnectAsync(new ConnectRequest(), cancellationToken: Token);
        Assert.Equal((uint)Environment.ProcessId, connect.ShimPid);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Deleting_a_running_process_is_failed_precondition(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        await shim.CreateAsync("c1");
        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.DeleteAsync(new DeleteRequest { Id = "c1" }, cancellationToken: Token).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        StateResponse state = await shim.Client.StateAsync(new StateRequest { Id = "c1" }, cancellationToken: Token);
        Assert.Equal(WireStatus.Running, state.Status);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Starting_twice_is_failed_precondition(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        await shim.CreateAsync("c1");
        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Exec_lifecycle_and_duplicate_exec_id(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        ScriptedContainer container = await shim.CreateAsync("c1");
        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);

        await shim.Client.ExecAsync(Exec("c1", "e1"), cancellationToken: Token);
        var duplicate = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.ExecAsync(Exec("c1", "e1"), cancellationToken: Token).ResponseAsync);
        Assert.Equal(StatusCode.AlreadyExists, duplicate.StatusCode);

        StartResponse started = await shim.Client.StartAsync(new StartRequest { Id = "c1", ExecId = "e1" }, cancellationToken: Token);
        PidsResponse pids = await shim.Client.PidsAsync(new PidsRequest { Id = "c1" }, cancellationToken: Token);
        Assert.Contains(pids.Processes, p => p.Pid == started.Pid);

        container.ExecProcesses[0].Exit(5);
        WaitResponse waited = await shim.Client.WaitAsync(new WaitRequest { Id = "c1", ExecId = "e1" }, cancellationToken: Token);
        Assert.Equal(5u, waited.ExitStatus);
        StateResponse state = await shim.Client.StateAsync(new StateRequest { Id = "c1", ExecId = "e1" }, cancellationToken: Token);
        Assert.Equal(WireStatus.Stopped, state.Status);
        Assert.Equal("e1", state.ExecId);
        await shim.Client.DeleteAsync(new DeleteRequest { Id = "c1", ExecId = "e1" }, cancellationToken: Token);

        Assert.Equal(
            ["/tasks/create", "/tasks/start", "/tasks/exec-added", "/tasks/exec-started", "/tasks/exit"],
            shim.Events.Topics);
        var exit = (TaskExit)shim.Events.Events[4].Event;
        Assert.Equal("e1", exit.Id);
        Assert.Contains("\"args\"", container.ExecProcesses[0].SpecJson, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task A_failed_exec_start_answers_wait_at_once_publishes_no_exit_and_can_be_deleted(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        ScriptedContainer container = await shim.CreateAsync("c1");
        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);
        await shim.Client.ExecAsync(Exec("c1", "e1"), cancellationToken: Token);
        container.ExecProcesses[0].FailStart = new NotFoundException("no such binary");

        var failed = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.StartAsync(new StartRequest { Id = "c1", ExecId = "e1" }, cancellationToken: Token).ResponseAsync);
        WaitResponse waited = await shim.Client.WaitAsync(new WaitRequest { Id = "c1", ExecId = "e1" }, cancellationToken: Token)
            .ResponseAsync.WaitAsync(TimeSpan.FromSeconds(5), Token);
        StateResponse state = await shim.Client.StateAsync(new StateRequest { Id = "c1", ExecId = "e1" }, cancellationToken: Token);
        await shim.Client.DeleteAsync(new DeleteRequest { Id = "c1", ExecId = "e1" }, cancellationToken: Token);

        Assert.Equal(StatusCode.NotFound, failed.StatusCode);
        Assert.Equal(255u, waited.ExitStatus);
        Assert.Equal(WireStatus.Stopped, state.Status);
        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exec-added"], shim.Events.Topics);

        // The container carries on: its own exit is still published after the failed exec.
        container.InitProcess.Exit(0);
        await shim.Client.WaitAsync(new WaitRequest { Id = "c1" }, cancellationToken: Token);
        Assert.Equal("/tasks/exit", shim.Events.Topics[^1]);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Delete_while_a_start_is_in_flight_is_failed_precondition_and_start_then_completes(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        ScriptedContainer container = await shim.CreateAsync("c1");
        var gate = new TaskCompletionSource();
        container.InitProcess.StartGate = gate;

        Task<StartResponse> start = shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token).ResponseAsync;
        await Task.Delay(100, Token);
        var refused = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.DeleteAsync(new DeleteRequest { Id = "c1" }, cancellationToken: Token).ResponseAsync);
        gate.SetResult();
        StartResponse started = await start.WaitAsync(TimeSpan.FromSeconds(5), Token);

        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("starting", refused.Status.Detail, StringComparison.Ordinal);
        Assert.True(started.Pid > 0);
        Assert.False(container.Disposed);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task An_exec_never_started_reports_no_exit_even_when_its_container_kills_it(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        ScriptedContainer container = await shim.CreateAsync("c1");
        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);
        await shim.Client.ExecAsync(Exec("c1", "idle"), cancellationToken: Token);

        container.InitProcess.Exit(0);
        await shim.Client.WaitAsync(new WaitRequest { Id = "c1" }, cancellationToken: Token);
        await shim.Client.DeleteAsync(new DeleteRequest { Id = "c1" }, cancellationToken: Token);
        container.ExecProcesses[0].Exit(137); // what a plugin's dispose does to an exec never started
        await Task.Delay(200, Token);

        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exec-added", "/tasks/exit", "/tasks/delete"], shim.Events.Topics);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task An_exec_starting_when_its_init_dies_reports_its_exit_before_the_inits(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        ScriptedContainer container = await shim.CreateAsync("c1");
        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);
        await shim.Client.ExecAsync(Exec("c1", "late"), cancellationToken: Token);
        var gate = new TaskCompletionSource();
        container.ExecProcesses[0].StartGate = gate;
        Task<StartResponse> execStart = shim.Client.StartAsync(new StartRequest { Id = "c1", ExecId = "late" }, cancellationToken: Token).ResponseAsync;
        await Task.Delay(100, Token);

        container.InitProcess.Exit(0);
        await Task.Delay(100, Token);
        gate.SetResult();
        await execStart.WaitAsync(TimeSpan.FromSeconds(5), Token);
        await shim.Client.WaitAsync(new WaitRequest { Id = "c1" }, cancellationToken: Token).ResponseAsync.WaitAsync(TimeSpan.FromSeconds(5), Token);

        string[] exits = [.. shim.Events.Events.Where(e => e.Topic == "/tasks/exit").Select(e => ((TaskExit)e.Event).Id)];
        Assert.Equal(["late", "c1"], exits);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Exec_exits_are_reported_before_their_init_exit(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        ScriptedContainer container = await shim.CreateAsync("c1");
        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);
        await shim.Client.ExecAsync(Exec("c1", "e1"), cancellationToken: Token);
        await shim.Client.StartAsync(new StartRequest { Id = "c1", ExecId = "e1" }, cancellationToken: Token);

        container.InitProcess.Exit(0);
        await shim.Client.WaitAsync(new WaitRequest { Id = "c1" }, cancellationToken: Token);

        // The host killed the orphaned exec, as a PID namespace would, and reported it first.
        Assert.Equal([(9, false)], container.ExecProcesses[0].Signals);
        TaskExit[] exits = [.. shim.Events.Events.Where(e => e.Topic == "/tasks/exit").Select(e => (TaskExit)e.Event)];
        Assert.Equal(["e1", "c1"], exits.Select(e => e.Id));
        Assert.Equal(137u, exits[0].ExitStatus);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Exec_into_a_task_that_is_not_running_is_failed_precondition(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        await shim.CreateAsync("c1");

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.ExecAsync(Exec("c1", "e1"), cancellationToken: Token).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Exec_without_a_spec_is_invalid_argument(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        await shim.CreateAsync("c1");
        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.ExecAsync(new ExecProcessRequest { Id = "c1", ExecId = "e1" }, cancellationToken: Token).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Pause_and_resume_change_state_and_publish_events(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        ScriptedContainer container = await shim.CreateAsync("c1");
        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);

        await shim.Client.PauseAsync(new PauseRequest { Id = "c1" }, cancellationToken: Token);
        StateResponse paused = await shim.Client.StateAsync(new StateRequest { Id = "c1" }, cancellationToken: Token);
        await shim.Client.ResumeAsync(new ResumeRequest { Id = "c1" }, cancellationToken: Token);
        StateResponse resumed = await shim.Client.StateAsync(new StateRequest { Id = "c1" }, cancellationToken: Token);

        Assert.Equal(WireStatus.Paused, paused.Status);
        Assert.Equal(WireStatus.Running, resumed.Status);
        Assert.False(container.Paused);
        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/paused", "/tasks/resumed"], shim.Events.Topics);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Operations_the_plugin_lacks_are_unimplemented(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(TaskCapabilities.None, transport);
        await shim.CreateAsync("c1");
        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);

        Func<Task>[] calls =
        [
            () => shim.Client.StatsAsync(new StatsRequest { Id = "c1" }, cancellationToken: Token).ResponseAsync,
            () => shim.Client.PauseAsync(new PauseRequest { Id = "c1" }, cancellationToken: Token).ResponseAsync,
            () => shim.Client.PidsAsync(new PidsRequest { Id = "c1" }, cancellationToken: Token).ResponseAsync,
            () => shim.Client.ExecAsync(Exec("c1", "e1"), cancellationToken: Token).ResponseAsync,
            () => shim.Client.CheckpointAsync(new CheckpointTaskRequest { Id = "c1", Path = "/tmp/x" }, cancellationToken: Token).ResponseAsync,
            () => shim.Client.ResizePtyAsync(new ResizePtyRequest { Id = "c1", Width = 80, Height = 24 }, cancellationToken: Token).ResponseAsync,
            () => shim.Client.UpdateAsync(new UpdateTaskRequest { Id = "c1", Resources = new Any { TypeUrl = "x", Value = ByteString.CopyFromUtf8("{}") } }, cancellationToken: Token).ResponseAsync,
        ];

        foreach (Func<Task> call in calls)
        {
            var error = await Assert.ThrowsAsync<RpcException>(call);
            Assert.Equal(StatusCode.Unimplemented, error.StatusCode);
        }
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Terminal_create_without_terminal_support_is_unimplemented(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.CreateAsync(new CreateTaskRequest { Id = "c1", Bundle = shim.Bundle, Terminal = true }, cancellationToken: Token).ResponseAsync);

        Assert.Equal(StatusCode.Unimplemented, error.StatusCode);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Connect_answers_before_any_task_with_our_pid_and_version(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);

        ConnectResponse response = await shim.Client.ConnectAsync(new ConnectRequest(), cancellationToken: Token);

        Assert.Equal((uint)Environment.ProcessId, response.ShimPid);
        Assert.Matches(@"^\d+\.\d+\.\d+$", response.Version);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Shutdown_ends_the_daemon_only_when_no_task_is_left(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        ScriptedContainer container = await shim.CreateAsync("c1");

        await shim.Client.ShutdownAsync(new ShutdownRequest { Id = "c1" }, cancellationToken: Token);
        Assert.False(shim.Lifetime.ExitRequested.IsCompleted);

        container.InitProcess.Exit(0); // never started: ends as a created container killed
        await shim.Client.DeleteAsync(new DeleteRequest { Id = "c1" }, cancellationToken: Token);
        await shim.Client.ShutdownAsync(new ShutdownRequest { Id = "c1" }, cancellationToken: Token);
        Assert.True(shim.Lifetime.ExitRequested.IsCompleted);
    }

    [Theory]
    [MemberData(nameof(TaskApiHarness.Transports), MemberType = typeof(TaskApiHarness))]
    public async Task Invalid_signal_is_invalid_argument(string transport)
    {
        await using TaskApiHarness shim = await TaskApiHarness.StartAsync(transport: transport);
        await shim.CreateAsync("c1");
        await shim.Client.StartAsync(new StartRequest { Id = "c1" }, cancellationToken: Token);

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            shim.Client.KillAsync(new KillRequest { Id = "c1", Signal = 0 }, cancellationToken: Token).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
    }

    private static ExecProcessRequest Exec(string id, string execId) => new()
    {
        Id = id,
        ExecId = execId,
        Spec = new Any
        {
            TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process",
            Value = ByteString.CopyFrom("""{"args":["sleep","10"],"cwd":"/"}""", Encoding.UTF8),
        },
    };
}
