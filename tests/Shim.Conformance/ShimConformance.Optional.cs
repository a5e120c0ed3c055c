using System.Text;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using PluggableShim.Abstractions;
using PluggableShim.Contracts.Task;
using Task = System.Threading.Tasks.Task;
using Status = PluggableShim.Contracts.Types.Status;

namespace PluggableShim.Conformance;

public abstract partial class ShimConformance<TTarget>
{
    /// <summary>
    /// Pause and Resume: PAUSED in State, /tasks/paused and /tasks/resumed, a second Pause or a Resume
    /// of a running task is FailedPrecondition, and a paused task can still be killed. Unimplemented
    /// without the Pause capability.
    /// </summary>
    [Fact]
    public async Task Pause_and_Resume_follow_the_state_machine_or_are_Unimplemented()
    {
        await using LaunchedShim shim = await LaunchAsync("pause", ProcessBehavior.RunUntilKilled());
        using ClientIo io = await CreateAsync(shim);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        var task = shim.Task;
        if (!Supports(TaskCapabilities.Pause))
        {
            await AssertStatusAsync(StatusCode.Unimplemented, task.PauseAsync(new PauseRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync, "Pause");
            await AssertStatusAsync(StatusCode.Unimplemented, task.ResumeAsync(new ResumeRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync, "Resume");
        }
        else
        {
            await AssertStatusAsync(StatusCode.FailedPrecondition,
                task.ResumeAsync(new ResumeRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync, "Resume of a running task");
            await task.PauseAsync(new PauseRequest { Id = shim.Id }, cancellationToken: Token);
            Assert.Equal(Status.Paused, (await task.StateAsync(new StateRequest { Id = shim.Id }, cancellationToken: Token)).Status);
            await AssertStatusAsync(StatusCode.FailedPrecondition,
                task.PauseAsync(new PauseRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync, "second Pause");
            await task.ResumeAsync(new ResumeRequest { Id = shim.Id }, cancellationToken: Token);
            Assert.Equal(Status.Running, (await task.StateAsync(new StateRequest { Id = shim.Id }, cancellationToken: Token)).Status);
            await task.PauseAsync(new PauseRequest { Id = shim.Id }, cancellationToken: Token);
        }

        await task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        WaitResponse exited = await task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        Assert.Equal(137u, exited.ExitStatus);
        Assert.Equal(Status.Stopped, (await task.StateAsync(new StateRequest { Id = shim.Id }, cancellationToken: Token)).Status);
        await DeleteAndShutdownAsync(shim);
        if (Supports(TaskCapabilities.Pause))
        {
            Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/paused", "/tasks/resumed", "/tasks/paused", "/tasks/exit", "/tasks/delete"],
                await shim.Events.WaitForAsync(shim.Id, "/tasks/delete", Bound));
        }
    }

    /// <summary>Pids lists the running task's processes (live ones, when pids are host pids); Unimplemented without the capability.</summary>
    [Fact]
    public async Task Pids_lists_the_running_processes_or_is_Unimplemented()
    {
        await using LaunchedShim shim = await LaunchAsync("pids", ProcessBehavior.RunUntilKilled());
        using ClientIo io = await CreateAsync(shim);
        StartResponse started = await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        Task<PidsResponse> pids = shim.Task.PidsAsync(new PidsRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync;
        if (Supports(TaskCapabilities.Pids))
        {
            // Not necessarily the pid Start answered: a runtime may report its own shim's pid there (runhcs does).
            uint[] listed = [.. (await pids).Processes.Select(p => p.Pid)];
            Assert.NotEmpty(listed);
            if (Target.ReportsHostPids)
            {
                Assert.All(listed, pid => Assert.True(LaunchedShim.IsAlive((int)pid), $"Pids listed {pid}, which is no live process"));
            }
        }
        else
        {
            await AssertStatusAsync(StatusCode.Unimplemented, pids, "Pids");
        }

        await shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        await DeleteAndShutdownAsync(shim);
    }

    /// <summary>
    /// Each declared operation works, and each one left out answers Unimplemented: Stats answers a
    /// typed payload; Update of OCI LinuxResources succeeds (or InvalidArgument, for a runtime that
    /// takes other resources); Checkpoint succeeds (or FailedPrecondition / InvalidArgument: the kit's
    /// task and request may not be checkpointable everywhere); ResizePty of the kit's process, which
    /// has no terminal, succeeds (as runc's shim answers) or FailedPrecondition (as hcsshim's does).
    /// Without Terminal, a terminal Create answers Unimplemented.
    /// </summary>
    [Fact]
    public async Task Stats_Update_Checkpoint_and_terminals_answer_per_the_declared_capabilities()
    {
        await using LaunchedShim shim = await LaunchAsync("opt", ProcessBehavior.RunUntilKilled());
        if (!Supports(TaskCapabilities.Terminal))
        {
            CreateTaskRequest terminal = shim.CreateRequest(null);
            terminal.Terminal = true;
            await AssertStatusAsync(StatusCode.Unimplemented, shim.Task.CreateAsync(terminal, cancellationToken: Token).ResponseAsync, "Create with a terminal");
        }

        using ClientIo io = await CreateAsync(shim);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        var task = shim.Task;

        Task<StatsResponse> stats = task.StatsAsync(new StatsRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync;
        if (Supports(TaskCapabilities.Stats))
        {
            Assert.NotEmpty((await stats).Stats.TypeUrl);
        }
        else
        {
            await AssertStatusAsync(StatusCode.Unimplemented, stats, "Stats");
        }

        var resources = new Any
        {
            TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
            Value = ByteString.CopyFrom("""{"pids":{"limit":512}}""", Encoding.UTF8),
        };
        Task update = task.UpdateAsync(new UpdateTaskRequest { Id = shim.Id, Resources = resources }, cancellationToken: Token).ResponseAsync;
        await (Supports(TaskCapabilities.Update)
            ? AssertWorksAsync(update, "Update", StatusCode.InvalidArgument)
            : AssertStatusAsync(StatusCode.Unimplemented, update, "Update"));

        string checkpointPath = Path.Combine(Installation.WorkDirectory, "checkpoint-" + shim.Id);
        Task checkpoint = task.CheckpointAsync(new CheckpointTaskRequest { Id = shim.Id, Path = checkpointPath }, cancellationToken: Token).ResponseAsync;
        await (Supports(TaskCapabilities.Checkpoint)
            ? AssertWorksAsync(checkpoint, "Checkpoint", StatusCode.FailedPrecondition, StatusCode.InvalidArgument)
            : AssertStatusAsync(StatusCode.Unimplemented, checkpoint, "Checkpoint"));

        Task resize = task.ResizePtyAsync(new ResizePtyRequest { Id = shim.Id, Width = 80, Height = 24 }, cancellationToken: Token).ResponseAsync;
        await (Supports(TaskCapabilities.Terminal)
            ? AssertWorksAsync(resize, "ResizePty", StatusCode.FailedPrecondition)
            : AssertStatusAsync(StatusCode.Unimplemented, resize, "ResizePty"));

        Assert.Equal(Status.Running, (await task.StateAsync(new StateRequest { Id = shim.Id }, cancellationToken: Token)).Status);
        await task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        await task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        await DeleteAndShutdownAsync(shim);
    }
}
