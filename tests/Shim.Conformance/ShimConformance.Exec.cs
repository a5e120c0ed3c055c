using Grpc.Core;
using PluggableShim.Abstractions;
using PluggableShim.Contracts.Events;
using PluggableShim.Contracts.Task;
using Task = System.Threading.Tasks.Task;
using Status = PluggableShim.Contracts.Types.Status;

namespace PluggableShim.Conformance;

public abstract partial class ShimConformance<TTarget>
{
    /// <summary>
    /// An exec runs in the running task with its own IO; Wait on it blocks until it exits; its exit
    /// code is its own; exec-added → exec-started → exit; Delete of the exec leaves the task running.
    /// Without the Exec capability, Exec answers Unimplemented.
    /// </summary>
    [Fact]
    public async Task An_exec_runs_with_its_own_io_wait_exit_code_and_events_or_is_Unimplemented()
    {
        await using LaunchedShim shim = await LaunchAsync("exec", ProcessBehavior.RunUntilKilled());
        using ClientIo io = await CreateAsync(shim);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        using var execIo = new ClientIo(Installation.WorkDirectory);
        ExecProcessRequest request = ExecRequest(shim, "probe", new ProcessBehavior { EchoStdin = true, ExitCode = 6 }, execIo);
        if (!Supports(TaskCapabilities.Exec))
        {
            await AssertStatusAsync(StatusCode.Unimplemented, shim.Task.ExecAsync(request, cancellationToken: Token).ResponseAsync, "Exec");
            await shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
            await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
            await DeleteAndShutdownAsync(shim);
            return;
        }

        await shim.Task.ExecAsync(request, cancellationToken: Token);
        StateResponse created = await shim.Task.StateAsync(new StateRequest { Id = shim.Id, ExecId = "probe" }, cancellationToken: Token);
        Assert.Equal(Status.Created, created.Status);
        Assert.Equal("probe", created.ExecId);
        Task<WaitResponse> wait = shim.Task.WaitAsync(new WaitRequest { Id = shim.Id, ExecId = "probe" }, cancellationToken: Token).ResponseAsync;
        StartResponse started = await shim.Task.StartAsync(new StartRequest { Id = shim.Id, ExecId = "probe" }, cancellationToken: Token);
        Assert.NotEqual(0u, started.Pid);
        execIo.Write("x\n");
        await execIo.WaitForOutputAsync("got-x\n", Bound);
        Assert.False(wait.IsCompleted, "Wait on the exec answered while it was running");
        await AssertStatusAsync(StatusCode.FailedPrecondition,
            shim.Task.DeleteAsync(new DeleteRequest { Id = shim.Id, ExecId = "probe" }, cancellationToken: Token).ResponseAsync, "Delete of a running exec");

        await shim.Task.CloseIOAsync(new CloseIORequest { Id = shim.Id, ExecId = "probe", Stdin = true }, cancellationToken: Token);
        WaitResponse exited = await wait.WaitAsync(Bound, Token);
        Assert.Equal(6u, exited.ExitStatus);
        await execIo.WaitForOutputAsync("stdin-eof\n", Bound); // written before the exit; the FIFO may still hold it
        Assert.Equal("got-x\nstdin-eof\n", execIo.Output);
        DeleteResponse deleted = await shim.Task.DeleteAsync(new DeleteRequest { Id = shim.Id, ExecId = "probe" }, cancellationToken: Token);
        Assert.Equal(6u, deleted.ExitStatus);
        await AssertStatusAsync(StatusCode.NotFound,
            shim.Task.StateAsync(new StateRequest { Id = shim.Id, ExecId = "probe" }, cancellationToken: Token).ResponseAsync, "State of a deleted exec");
        StateResponse init = await shim.Task.StateAsync(new StateRequest { Id = shim.Id }, cancellationToken: Token);
        Assert.Equal(Status.Running, init.Status);
        Assert.Equal("", io.Output); // the exec's output went to its own FIFOs

        await shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        await DeleteAndShutdownAsync(shim);
        IReadOnlyList<string> topics = await shim.Events.WaitForAsync(shim.Id, "/tasks/delete", Bound);
        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exec-added", "/tasks/exec-started", "/tasks/exit", "/tasks/exit", "/tasks/delete"], topics);
        TaskExit execExit = shim.Events.One(shim.Id, "/tasks/exit", TaskExit.Parser, e => e.Id == "probe");
        Assert.Equal(6u, execExit.ExitStatus);
        Assert.Equal(started.Pid, execExit.Pid);
        Assert.Equal(started.Pid, shim.Events.One(shim.Id, "/tasks/exec-started", TaskExecStarted.Parser).Pid);
    }

    /// <summary>Exec errors: a duplicate exec id is AlreadyExists; an exec in a task not running is FailedPrecondition.</summary>
    [Fact]
    public async Task A_duplicate_exec_id_is_AlreadyExists_and_an_exec_in_a_task_not_running_is_FailedPrecondition()
    {
        Assert.SkipUnless(Supports(TaskCapabilities.Exec), "the plugin does not declare Exec (its Unimplemented answer is tested)");
        await using LaunchedShim shim = await LaunchAsync("exerr", ProcessBehavior.RunUntilKilled());
        using ClientIo io = await CreateAsync(shim);

        await AssertStatusAsync(StatusCode.FailedPrecondition,
            shim.Task.ExecAsync(ExecRequest(shim, "early", ProcessBehavior.ExitWith(0), null), cancellationToken: Token).ResponseAsync,
            "Exec before the task started");
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        await shim.Task.ExecAsync(ExecRequest(shim, "twice", ProcessBehavior.RunUntilKilled(), null), cancellationToken: Token);
        await AssertStatusAsync(StatusCode.AlreadyExists,
            shim.Task.ExecAsync(ExecRequest(shim, "twice", ProcessBehavior.RunUntilKilled(), null), cancellationToken: Token).ResponseAsync,
            "second Exec with the same id");

        await shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        await AssertStatusAsync(StatusCode.FailedPrecondition,
            shim.Task.ExecAsync(ExecRequest(shim, "late", ProcessBehavior.ExitWith(0), null), cancellationToken: Token).ResponseAsync,
            "Exec after the task exited");
        await DeleteAndShutdownAsync(shim);
    }

    /// <summary>When the init process dies, its running execs die too, and every exec's exit is published before the init's.</summary>
    [Fact]
    public async Task Every_exec_exit_is_published_before_its_init_exit()
    {
        Assert.SkipUnless(Supports(TaskCapabilities.Exec), "the plugin does not declare Exec");
        await using LaunchedShim shim = await LaunchAsync("order", ProcessBehavior.RunUntilKilled());
        using ClientIo io = await CreateAsync(shim);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        await shim.Task.ExecAsync(ExecRequest(shim, "long", ProcessBehavior.RunUntilKilled(), null), cancellationToken: Token);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id, ExecId = "long" }, cancellationToken: Token);
        Task<WaitResponse> execWait = shim.Task.WaitAsync(new WaitRequest { Id = shim.Id, ExecId = "long" }, cancellationToken: Token).ResponseAsync;

        await shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        await execWait.WaitAsync(Bound, Token);

        IReadOnlyList<string> topics = await shim.Events.WaitForAsync(shim.Id, "/tasks/exit", Bound);
        TaskExit[] exits = [.. shim.Events.Envelopes.Where(e => e.Topic == "/tasks/exit").Select(e => TaskExit.Parser.ParseFrom(e.Event.Value))
            .Where(e => e.ContainerId == shim.Id)];
        Assert.Equal(["long", shim.Id], exits.Select(e => e.Id));
        Assert.Equal(137u, exits[1].ExitStatus);
        await DeleteAndShutdownAsync(shim);
    }

    /// <summary>Kill with all reaches every process of the container: a running exec and the init both end.</summary>
    [Fact]
    public async Task Kill_with_all_ends_every_process_of_the_container()
    {
        await using LaunchedShim shim = await LaunchAsync("all", ProcessBehavior.RunUntilKilled());
        using ClientIo io = await CreateAsync(shim);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        Task<WaitResponse>? execWait = null;
        uint execPid = 0;
        if (Supports(TaskCapabilities.Exec))
        {
            await shim.Task.ExecAsync(ExecRequest(shim, "sleeper", ProcessBehavior.RunUntilKilled(), null), cancellationToken: Token);
            execPid = (await shim.Task.StartAsync(new StartRequest { Id = shim.Id, ExecId = "sleeper" }, cancellationToken: Token)).Pid;
            execWait = shim.Task.WaitAsync(new WaitRequest { Id = shim.Id, ExecId = "sleeper" }, cancellationToken: Token).ResponseAsync;
        }

        await shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9, All = true }, cancellationToken: Token);

        WaitResponse init = await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        Assert.Equal(137u, init.ExitStatus);
        if (execWait is not null)
        {
            Assert.Equal(137u, (await execWait.WaitAsync(Bound, Token)).ExitStatus);
            if (Target.ReportsHostPids)
            {
                Assert.False(LaunchedShim.IsAlive((int)execPid), $"exec process {execPid} survived Kill with all");
            }
        }

        await DeleteAndShutdownAsync(shim);
    }
}
