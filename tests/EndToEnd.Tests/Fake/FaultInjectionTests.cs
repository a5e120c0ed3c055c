using System.Diagnostics;
using PluggableShim.EndToEnd.Tests.Support;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;

namespace PluggableShim.EndToEnd.Tests.Fake;

/// <summary>
/// The Fake plugin's fault-injection annotations, as a CI user drives them: <c>ctr run --annotation</c>
/// under a real containerd, judged by what ctr prints and returns and by the events containerd recorded.
/// </summary>
[Collection(ContainerdCollection.Name)]
public sealed class FaultInjectionTests(ContainerdFixture fixture)
{
    private const string Ns = "e2e-faults";
    private const string P = "io.pluggableshim.fake.";
    private static readonly string s_image = LocalContainerd.ImageReference;
    private static readonly TimeSpan EventWait = TimeSpan.FromSeconds(20);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string NewId(string stem) => $"{stem}-{Guid.NewGuid().ToString("N")[..8]}";

    [Theory]
    [InlineData("NotFound", "boom-NotFound: not found")]
    [InlineData("AlreadyExists", "boom-AlreadyExists: already exists")]
    [InlineData("FailedPrecondition", "boom-FailedPrecondition: failed precondition")]
    [InlineData("InvalidArgument", "boom-InvalidArgument: invalid argument")]
    [InlineData("Unimplemented", "boom-Unimplemented is not implemented by this runtime plugin: not implemented")]
    [InlineData("Unknown", "boom-Unknown: unknown")]
    public async Task Create_fails_with_the_injected_code_and_message_and_no_task_event_is_published(string code, string printed)
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("create-" + code.ToLowerInvariant());

        CommandResult run = await RunAsync(containerd, id, [$"{P}create-error={code}:boom-{code}"], ["true"]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"ctr: failed to create shim task: ", run.Stderr, StringComparison.Ordinal);
        Assert.EndsWith(printed, run.Stderr.TrimEnd(), StringComparison.Ordinal);
        await WaitForAsync(containerd, id, "/containers/delete");
        Assert.Empty(TaskTopics(containerd, id));
    }

    [Theory]
    [InlineData("exit-code=256", "\"256\" is not an exit code (0 to 255)")]
    [InlineData("create-delay=10", "needs a unit (ms, s, m or h)")]
    [InlineData("start-error=Internal", "\"Internal\" is not a status code")]
    [InlineData("exec.probe.oom-after=soon", "\"soon\" must be a number followed by a unit")]
    public async Task A_bad_annotation_value_fails_Create_with_InvalidArgument_naming_the_annotation(string annotation, string why)
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string name = P + annotation[..annotation.IndexOf('=', StringComparison.Ordinal)];

        CommandResult run = await RunAsync(containerd, NewId("badvalue"), [P + annotation], ["true"]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"annotation {name}: ", run.Stderr, StringComparison.Ordinal);
        Assert.Contains(why, run.Stderr, StringComparison.Ordinal);
        Assert.EndsWith(": invalid argument", run.Stderr.TrimEnd(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_fault_name_fails_Create_with_InvalidArgument()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);

        CommandResult run = await RunAsync(containerd, NewId("typo"), [P + "fail-create=NotFound"], ["true"]);

        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"annotation {P}fail-create is not a Fake plugin fault", run.Stderr, StringComparison.Ordinal);
        Assert.EndsWith(": invalid argument", run.Stderr.TrimEnd(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_and_start_delays_hold_their_calls_and_the_task_then_runs()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("delays");
        var clock = Stopwatch.StartNew();

        CommandResult run = await RunAsync(containerd, id, [P + "create-delay=1s", P + "start-delay=1500ms"], ["echo", "late"]);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("late\n", run.Stdout);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(2.5), $"ctr run took only {clock.Elapsed}");
        await WaitForAsync(containerd, id, "/tasks/delete");
        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"], TaskTopics(containerd, id));
    }

    [Fact]
    public async Task Start_fails_as_asked_the_task_is_created_never_started_and_deleted()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("nostart");

        CommandResult run = await RunAsync(containerd, id, [P + "start-error=FailedPrecondition:not today"], ["true"]);

        Assert.Equal(1, run.ExitCode);
        Assert.EndsWith("not today: failed precondition", run.Stderr.TrimEnd(), StringComparison.Ordinal);
        await WaitForAsync(containerd, id, "/containers/delete");
        Assert.Equal(["/tasks/create", "/tasks/delete"], TaskTopics(containerd, id));
    }

    [Fact]
    public async Task A_forced_exit_code_is_what_ctr_returns_and_what_the_exit_event_says()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("exitcode");

        CommandResult run = await RunAsync(containerd, id, [P + "exit-code=42"], ["sh", "-c", "echo ran; exit 0"]);

        Assert.Equal(42, run.ExitCode);
        Assert.Equal("ran\n", run.Stdout);
        RecordedEvent exit = await WaitForAsync(containerd, id, "/tasks/exit");
        Assert.Equal("42", exit.Property("exit_status"));
    }

    [Fact]
    public async Task Exit_after_ends_a_long_process_at_the_given_time_with_the_given_code()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("exitafter");
        var clock = Stopwatch.StartNew();

        CommandResult run = await RunAsync(containerd, id, [P + "exit-after=1s", P + "exit-code=3"], ["sleep", "300"]);

        Assert.Equal(3, run.ExitCode);
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
        RecordedEvent exit = await WaitForAsync(containerd, id, "/tasks/exit");
        Assert.Equal("3", exit.Property("exit_status"));
        int pid = int.Parse(exit.Property("pid")!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.False(Posix.IsAlive(pid), "the sleep outlived exit-after");
    }

    [Fact]
    public async Task Oom_after_publishes_tasks_oom_then_the_process_dies_with_137()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("oom");

        CommandResult run = await RunAsync(containerd, id, [P + "oom-after=500ms"], ["sleep", "300"]);

        Assert.Equal(137, run.ExitCode);
        await WaitForAsync(containerd, id, "/tasks/delete");
        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/oom", "/tasks/exit", "/tasks/delete"], TaskTopics(containerd, id));
        Assert.Equal("137", Event(containerd, id, "/tasks/exit").Property("exit_status"));
    }

    [Fact]
    public async Task Exec_faults_hit_every_exec_or_the_named_one_and_leave_the_container_running()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("execs");
        await RunDetachedAsync(containerd, id,
            [P + "exec.create-error=NotFound:no execs", P + "exec.five.create-error=Unknown:x"],
            ["sleep", "300"]);
        try
        {
            CommandResult any = await ExecAsync(containerd, id, "any", "true");
            Assert.Equal(1, any.ExitCode);
            Assert.EndsWith("no execs: not found", any.Stderr.TrimEnd(), StringComparison.Ordinal);

            CommandResult five = await ExecAsync(containerd, id, "five", "true");
            Assert.Equal(1, five.ExitCode);
            Assert.EndsWith("Exec: x: unknown", five.Stderr.TrimEnd(), StringComparison.Ordinal);

            Assert.Equal("RUNNING", await TaskStatusAsync(containerd, id));
            Assert.DoesNotContain(containerd.Events.For(Ns, id), e => e.Topic == "/tasks/exec-added");
        }
        finally
        {
            await RemoveAsync(containerd, id);
        }
    }

    [Fact]
    public async Task A_named_exec_gets_its_start_delay_exit_code_and_oom_while_others_run_normally()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("execproc");
        await RunDetachedAsync(containerd, id,
            [P + "exec.slow.start-delay=1s", P + "exec.slow.exit-code=5", P + "exec.hog.oom-after=300ms"],
            ["sleep", "300"]);
        try
        {
            var clock = Stopwatch.StartNew();
            CommandResult slow = await ExecAsync(containerd, id, "slow", "echo", "slow");
            Assert.Equal(5, slow.ExitCode);
            Assert.Equal("slow\n", slow.Stdout);
            Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1), $"exec took only {clock.Elapsed}");

            CommandResult plain = await ExecAsync(containerd, id, "plain", "sh", "-c", "exit 4");
            Assert.Equal(4, plain.ExitCode);

            CommandResult hog = await ExecAsync(containerd, id, "hog", "sleep", "300");
            Assert.Equal(137, hog.ExitCode);
            RecordedEvent exit = await containerd.Events.WaitForAsync(
                e => e.Namespace == Ns && e.ContainerId == id && e.Topic == "/tasks/exit" && e.Property("id") == "hog",
                EventWait, Token);
            Assert.Equal("137", exit.Property("exit_status"));
            string[] hogTopics = [.. containerd.Events.For(Ns, id)
                .Where(e => e.Topic == "/tasks/oom" || (e.Topic.StartsWith("/tasks/exec", StringComparison.Ordinal) && e.Property("exec_id") == "hog")
                            || (e.Topic == "/tasks/exit" && e.Property("id") == "hog"))
                .Select(e => e.Topic)];
            Assert.Equal(["/tasks/exec-added", "/tasks/exec-started", "/tasks/oom", "/tasks/exit"], hogTopics);
            Assert.Equal("RUNNING", await TaskStatusAsync(containerd, id));
        }
        finally
        {
            await RemoveAsync(containerd, id);
        }
    }

    [Fact]
    public async Task Exec_create_delay_and_exit_after_apply_to_the_execs_they_name()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("execmore");
        await RunDetachedAsync(containerd, id, [P + "exec.create-delay=1s", P + "exec.short.exit-after=500ms"], ["sleep", "300"]);
        try
        {
            var clock = Stopwatch.StartNew();
            CommandResult plain = await ExecAsync(containerd, id, "plain", "echo", "delayed");
            Assert.Equal(0, plain.ExitCode);
            Assert.Equal("delayed\n", plain.Stdout);
            Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1), $"Exec was not delayed: {clock.Elapsed}");

            clock.Restart();
            CommandResult brief = await ExecAsync(containerd, id, "short", "sleep", "300");
            Assert.Equal(0, brief.ExitCode);
            Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(30));
            Assert.Equal("RUNNING", await TaskStatusAsync(containerd, id));
        }
        finally
        {
            await RemoveAsync(containerd, id);
        }
    }

    [Fact]
    public async Task Ctr_task_exec_of_an_exec_whose_start_fails_returns_the_error_instead_of_hanging()
    {
        // After a failed Start ctr waits for EOF on the exec's output FIFOs before it deletes the
        // exec: the shim must close them when Start fails.
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("execfail");
        await RunDetachedAsync(containerd, id, [P + "exec.broken.start-error=NotFound:cannot start"], ["sleep", "300"]);
        try
        {
            CommandResult exec = await containerd.CtrAsync(
                Ns, ["task", "exec", "--exec-id", "broken", id, "true"], timeout: TimeSpan.FromSeconds(30), cancellationToken: Token);

            Assert.NotEqual(0, exec.ExitCode);
            Assert.Contains("cannot start", exec.Stderr, StringComparison.Ordinal);
            CommandResult ok = await containerd.CtrAsync(
                Ns, ["task", "exec", "--exec-id", "fine", id, "echo", "after"], cancellationToken: Token);
            Assert.Equal("after\n", ok.Stdout);
            Assert.DoesNotContain(containerd.Events.For(Ns, id), e => e.Topic == "/tasks/exit" && e.Property("id") == "broken");
        }
        finally
        {
            await RemoveAsync(containerd, id);
        }
    }

    [Fact]
    public async Task Exec_start_error_fails_the_start_of_the_named_exec_of_a_task_containerd_runs()
    {
        // Over the shim's socket, to see the status and message exactly; the ctr path is the next test.
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("execstart");
        await RunDetachedAsync(containerd, id, [P + "exec.broken.start-error=NotFound:cannot start"], ["sleep", "300"]);
        try
        {
            string address = (await File.ReadAllTextAsync(Path.Combine(containerd.BundleOf(Ns, id), "address"), Token)).Trim();
            await using var client = await PluggableShim.Ttrpc.TtrpcClient.ConnectAsync(address, cancellationToken: Token);
            var task = new Contracts.Task.Task.TaskClient(client);
            var spec = Google.Protobuf.ByteString.CopyFromUtf8("""{"args":["true"],"cwd":"/","env":["PATH=/bin:/usr/bin"]}""");
            foreach (string execId in new[] { "broken", "fine" })
            {
                await task.ExecAsync(new Contracts.Task.ExecProcessRequest
                {
                    Id = id,
                    ExecId = execId,
                    Spec = new Google.Protobuf.WellKnownTypes.Any
                    {
                        TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process", Value = spec,
                    },
                }, cancellationToken: Token);
            }

            var failed = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () =>
                await task.StartAsync(new Contracts.Task.StartRequest { Id = id, ExecId = "broken" }, cancellationToken: Token));
            var started = await task.StartAsync(new Contracts.Task.StartRequest { Id = id, ExecId = "fine" }, cancellationToken: Token);

            Assert.Equal(Grpc.Core.StatusCode.NotFound, failed.StatusCode);
            Assert.Equal("cannot start", failed.Status.Detail);
            Assert.True(started.Pid > 0);
            await containerd.Events.WaitForAsync(
                e => e.Namespace == Ns && e.ContainerId == id && e.Topic == "/tasks/exec-started" && e.Property("exec_id") == "fine",
                EventWait, Token);
            Assert.DoesNotContain(containerd.Events.For(Ns, id),
                e => e.Topic == "/tasks/exec-started" && e.Property("exec_id") == "broken");
        }
        finally
        {
            await RemoveAsync(containerd, id);
        }
    }

    [Fact]
    public async Task Checkpoint_answers_unimplemented_and_the_task_keeps_running()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("checkpoint");
        await RunDetachedAsync(containerd, id, [], ["sleep", "300"]);
        try
        {
            CommandResult checkpoint = await containerd.CtrAsync(Ns, ["task", "checkpoint", id], cancellationToken: Token);

            Assert.Equal(1, checkpoint.ExitCode);
            Assert.EndsWith("is not implemented by this runtime plugin: not implemented", checkpoint.Stderr.TrimEnd(),
                StringComparison.Ordinal);
            Assert.Equal("RUNNING", await TaskStatusAsync(containerd, id));
            Assert.DoesNotContain(containerd.Events.For(Ns, id), e => e.Topic == "/tasks/checkpointed");
        }
        finally
        {
            await RemoveAsync(containerd, id);
        }
    }

    private Task<CommandResult> RunAsync(LocalContainerd containerd, string id, string[] annotations, string[] args) =>
        containerd.CtrAsync(
            Ns,
            ["run", "--rm", "--runtime", fixture.FakeShim, .. annotations.SelectMany(a => new[] { "--annotation", a }), s_image, id, .. args],
            cancellationToken: Token);

    private async Task RunDetachedAsync(LocalContainerd containerd, string id, string[] annotations, string[] args) =>
        (await containerd.CtrAsync(
            Ns,
            ["run", "-d", "--runtime", fixture.FakeShim, .. annotations.SelectMany(a => new[] { "--annotation", a }), s_image, id, .. args],
            cancellationToken: Token)).EnsureSuccess();

    private static Task<CommandResult> ExecAsync(LocalContainerd containerd, string id, string execId, params string[] args) =>
        containerd.CtrAsync(Ns, ["task", "exec", "--exec-id", execId, id, .. args], cancellationToken: Token);

    private static async Task RemoveAsync(LocalContainerd containerd, string id)
    {
        await containerd.CtrAsync(Ns, ["task", "rm", "-f", id], cancellationToken: CancellationToken.None);
        await containerd.CtrAsync(Ns, ["container", "rm", id], cancellationToken: CancellationToken.None);
    }

    private static Task<RecordedEvent> WaitForAsync(LocalContainerd containerd, string id, string topic) =>
        containerd.Events.WaitForAsync(e => e.Namespace == Ns && e.ContainerId == id && e.Topic == topic, EventWait, Token);

    private static RecordedEvent Event(LocalContainerd containerd, string id, string topic) =>
        containerd.Events.For(Ns, id).Single(e => e.Topic == topic);

    private static string[] TaskTopics(LocalContainerd containerd, string id) =>
        [.. containerd.Events.For(Ns, id).Select(e => e.Topic).Where(t => t.StartsWith("/tasks/", StringComparison.Ordinal))];

    private static async Task<string> TaskStatusAsync(LocalContainerd containerd, string id)
    {
        CommandResult list = (await containerd.CtrAsync(Ns, ["task", "ls"], cancellationToken: Token)).EnsureSuccess();
        string line = list.Stdout.Split('\n').Single(l => l.StartsWith(id + " ", StringComparison.Ordinal));
        return line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2];
    }
}
