using Grpc.Core;
using PluggableShim.Abstractions;
using PluggableShim.Contracts.Task;
using Task = System.Threading.Tasks.Task;
using Status = PluggableShim.Contracts.Types.Status;

namespace PluggableShim.Conformance;

public abstract partial class ShimConformance<TTarget>
{
    /// <summary>Every call naming a task (or exec) that does not exist answers NotFound, and the shim keeps serving.</summary>
    [Fact]
    public async Task Calls_for_an_unknown_task_or_exec_answer_NotFound()
    {
        await using LaunchedShim shim = await LaunchAsync("nf", ProcessBehavior.RunUntilKilled());
        using ClientIo io = await CreateAsync(shim);
        const string Missing = "no-such-task";
        var task = shim.Task;

        await AssertStatusAsync(StatusCode.NotFound, task.StateAsync(new StateRequest { Id = Missing }, cancellationToken: Token).ResponseAsync, "State");
        await AssertStatusAsync(StatusCode.NotFound, task.StartAsync(new StartRequest { Id = Missing }, cancellationToken: Token).ResponseAsync, "Start");
        await AssertStatusAsync(StatusCode.NotFound, task.KillAsync(new KillRequest { Id = Missing, Signal = 9 }, cancellationToken: Token).ResponseAsync, "Kill");
        await AssertStatusAsync(StatusCode.NotFound, task.DeleteAsync(new DeleteRequest { Id = Missing }, cancellationToken: Token).ResponseAsync, "Delete");
        await AssertStatusAsync(StatusCode.NotFound, task.WaitAsync(new WaitRequest { Id = Missing }, cancellationToken: Token).ResponseAsync, "Wait");
        await AssertStatusAsync(StatusCode.NotFound, task.CloseIOAsync(new CloseIORequest { Id = Missing, Stdin = true }, cancellationToken: Token).ResponseAsync, "CloseIO");
        await AssertStatusAsync(StatusCode.NotFound,
            task.StateAsync(new StateRequest { Id = shim.Id, ExecId = "no-such-exec" }, cancellationToken: Token).ResponseAsync, "State of an unknown exec");
        await AssertStatusAsync(StatusCode.NotFound,
            task.StartAsync(new StartRequest { Id = shim.Id, ExecId = "no-such-exec" }, cancellationToken: Token).ResponseAsync, "Start of an unknown exec");
        if (Supports(TaskCapabilities.Pause))
        {
            await AssertStatusAsync(StatusCode.NotFound, task.PauseAsync(new PauseRequest { Id = Missing }, cancellationToken: Token).ResponseAsync, "Pause");
        }

        if (Supports(TaskCapabilities.Pids))
        {
            await AssertStatusAsync(StatusCode.NotFound, task.PidsAsync(new PidsRequest { Id = Missing }, cancellationToken: Token).ResponseAsync, "Pids");
        }

        StateResponse still = await task.StateAsync(new StateRequest { Id = shim.Id }, cancellationToken: Token);
        Assert.Equal(Status.Created, still.Status);
        await task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        await DeleteAndShutdownAsync(shim);
    }

    /// <summary>A second Create with the id of a live task answers AlreadyExists and leaves the first alone.</summary>
    [Fact]
    public async Task A_second_Create_with_the_same_id_answers_AlreadyExists()
    {
        await using LaunchedShim shim = await LaunchAsync("dup", ProcessBehavior.RunUntilKilled("first"));
        using ClientIo io = await CreateAsync(shim);
        using var second = new ClientIo(Installation.WorkDirectory);

        await AssertStatusAsync(StatusCode.AlreadyExists,
            shim.Task.CreateAsync(shim.CreateRequest(second), cancellationToken: Token).ResponseAsync, "second Create");

        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        await io.WaitForOutputAsync("first\n", Bound);
        await shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        await DeleteAndShutdownAsync(shim);
    }

    /// <summary>Calls the state machine forbids answer FailedPrecondition: a second Start, Delete of a running task.</summary>
    [Fact]
    public async Task A_second_Start_and_Delete_of_a_running_task_answer_FailedPrecondition()
    {
        await using LaunchedShim shim = await LaunchAsync("fp", ProcessBehavior.RunUntilKilled());
        using ClientIo io = await CreateAsync(shim);
        StartResponse started = await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);

        await AssertStatusAsync(StatusCode.FailedPrecondition,
            shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync, "second Start");
        await AssertStatusAsync(StatusCode.FailedPrecondition,
            shim.Task.DeleteAsync(new DeleteRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync, "Delete of a running task");

        StateResponse state = await shim.Task.StateAsync(new StateRequest { Id = shim.Id }, cancellationToken: Token);
        Assert.Equal(Status.Running, state.Status);
        Assert.Equal(started.Pid, state.Pid);
        await shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        await DeleteAndShutdownAsync(shim);
    }

    /// <summary>Kill of a process that has exited answers NotFound (containerd treats that as done).</summary>
    [Fact]
    public async Task Killing_an_exited_process_answers_NotFound()
    {
        await using LaunchedShim shim = await LaunchAsync("kx", ProcessBehavior.ExitWith(0));
        using ClientIo io = await CreateAsync(shim);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);

        await AssertStatusAsync(StatusCode.NotFound,
            shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = 15 }, cancellationToken: Token).ResponseAsync, "Kill after exit");

        await DeleteAndShutdownAsync(shim);
    }

    /// <summary>
    /// Malformed requests answer InvalidArgument (bad ids, relative paths, unknown IO schemes, a
    /// config.json or an exec's process spec that is not a JSON object, an exec without a spec),
    /// and the shim keeps serving the task.
    /// </summary>
    [Fact]
    public async Task Malformed_requests_answer_InvalidArgument_and_the_shim_keeps_serving()
    {
        await using LaunchedShim shim = await LaunchAsync("inv", ProcessBehavior.RunUntilKilled("alive"));
        var task = shim.Task;

        CreateTaskRequest badId = shim.CreateRequest(null);
        badId.Id = "Bad/Id";
        await AssertStatusAsync(StatusCode.InvalidArgument, task.CreateAsync(badId, cancellationToken: Token).ResponseAsync, "Create with an id that is no identifier");
        CreateTaskRequest relativeBundle = shim.CreateRequest(null);
        relativeBundle.Bundle = "relative/bundle";
        await AssertStatusAsync(StatusCode.InvalidArgument, task.CreateAsync(relativeBundle, cancellationToken: Token).ResponseAsync, "Create with a relative bundle");
        CreateTaskRequest relativeStdout = shim.CreateRequest(null);
        relativeStdout.Stdout = "relative/stdout";
        await AssertStatusAsync(StatusCode.InvalidArgument, task.CreateAsync(relativeStdout, cancellationToken: Token).ResponseAsync, "Create with a relative stdout path");
        CreateTaskRequest badScheme = shim.CreateRequest(null);
        badScheme.Stdout = "nosuchscheme://x";
        await AssertStatusAsync(StatusCode.InvalidArgument, task.CreateAsync(badScheme, cancellationToken: Token).ResponseAsync, "Create with an unknown IO scheme");

        // The bundle's config.json is the plugin's to read: one that is not JSON is bad input, not Unknown.
        string config = Path.Combine(shim.Bundle, "config.json");
        string spec = await File.ReadAllTextAsync(config, Token);
        await File.WriteAllTextAsync(config, "{\"ociVersion\": ", Token);
        await AssertStatusAsync(StatusCode.InvalidArgument,
            task.CreateAsync(shim.CreateRequest(null), cancellationToken: Token).ResponseAsync, "Create with a config.json that is not JSON");
        await File.WriteAllTextAsync(config, spec, Token);

        // The refused Creates left nothing: the real one works.
        using ClientIo io = await CreateAsync(shim);
        await task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        await io.WaitForOutputAsync("alive\n", Bound);
        await AssertStatusAsync(StatusCode.InvalidArgument,
            task.StateAsync(new StateRequest { Id = "../escape" }, cancellationToken: Token).ResponseAsync, "State with a path as id");
        if (Supports(TaskCapabilities.Exec))
        {
            await AssertStatusAsync(StatusCode.InvalidArgument,
                task.ExecAsync(new ExecProcessRequest { Id = shim.Id, ExecId = "no-spec" }, cancellationToken: Token).ResponseAsync, "Exec without a spec");
            await AssertStatusAsync(StatusCode.InvalidArgument,
                task.ExecAsync(ExecRequest(shim, "bad/exec", ProcessBehavior.ExitWith(0), null), cancellationToken: Token).ResponseAsync, "Exec with a bad id");
            foreach ((string json, string what) in new[] { ("{\"args\": [", "not JSON"), ("[\"/bin/true\"]", "not a JSON object") })
            {
                ExecProcessRequest malformed = ExecRequest(shim, "malformed", ProcessBehavior.ExitWith(0), null);
                malformed.Spec.Value = Google.Protobuf.ByteString.CopyFromUtf8(json);
                await AssertStatusAsync(StatusCode.InvalidArgument,
                    task.ExecAsync(malformed, cancellationToken: Token).ResponseAsync, $"Exec with a process spec that is {what}");
            }
        }

        StateResponse state = await task.StateAsync(new StateRequest { Id = shim.Id }, cancellationToken: Token);
        Assert.Equal(Status.Running, state.Status);
        await task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        await task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        await DeleteAndShutdownAsync(shim);
    }
}
