using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using PluggableShim.Contracts.Runhcs;
using PluggableShim.Contracts.Task;
using PluggableShim.Contracts.Types;
using PluggableShim.Runhcs.Tests.Support;
using PluggableShim.Testing;
using Status = PluggableShim.Contracts.Types.Status;
using Task = System.Threading.Tasks.Task;

namespace PluggableShim.Runhcs.Tests.EndToEnd;

/// <summary>
/// The Runhcs plugin's whole path: containerd's calls over ttrpc to the published shim (installed
/// as containerd-shim-runhcs-v1), the plugin driving the stand-in runhcs, the stand-in's shims
/// running host processes with the stdio the plugin gave runhcs.
/// </summary>
public sealed class RunhcsThroughShimTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string NewId(string stem) => $"{stem}-{Guid.NewGuid().ToString("N")[..8]}";

    private static object Spec(string[] args, Dictionary<string, string>? annotations = null) => new
    {
        ociVersion = "1.0.2",
        process = new { args, env = new[] { "PATH=/usr/sbin:/usr/bin:/sbin:/bin" }, cwd = "/" },
        root = new { path = "rootfs" },
        annotations = annotations ?? [],
    };

    private static Mount LayerMount(string type, string scratch, params string[] parents) => new()
    {
        Type = type,
        Source = scratch,
        Options = { "parentLayerPaths=" + JsonSerializer.Serialize(parents) },
    };

    private static Any RunhcsOptions(string root, bool debug) => new()
    {
        // The prefixed form; containerd sends the bare name, both must work.
        TypeUrl = "type.googleapis.com/containerd.runhcs.v1.Options",
        Value = new Options { Debug = debug, RegistryRoot = root }.ToByteString(),
    };

    private static string[] LayerFolders(string bundle) =>
        [.. JsonNode.Parse(File.ReadAllText(Path.Combine(bundle, "config.json")))!["windows"]!["layerFolders"]!
            .AsArray().Select(n => n!.GetValue<string>())];

    [Fact]
    public async Task A_windows_layer_container_runs_with_its_io_and_reports_its_real_exit_code()
    {
        string id = NewId("wcow");
        string root = NewId("root");
        await using RunhcsShim shim = await RunhcsShim.StartAsync(id,
            Spec(["sh", "-c", "echo started; read line; echo got-$line; exit 3"]), Token);
        using var fifos = new Fifos();
        int daemon = await shim.DaemonPidAsync();

        CreateTaskResponse created = await shim.Task.CreateAsync(new CreateTaskRequest
        {
            Id = id,
            Bundle = shim.Bundle,
            Stdin = fifos.Stdin,
            Stdout = fifos.Stdout,
            Stderr = fifos.Stderr,
            Rootfs = { LayerMount("windows-layer", @"C:\layers\scratch", @"C:\layers\app", @"C:\layers\base") },
            Options = RunhcsOptions(root, debug: false),
        }, cancellationToken: Token);

        Assert.Equal([@"C:\layers\app", @"C:\layers\base", @"C:\layers\scratch"], LayerFolders(shim.Bundle));
        Assert.True(Directory.Exists(Path.Combine(shim.StandinState, root, id)), "registry_root did not reach runhcs --root");
        Assert.Equal(0u, created.Pid); // the contract: no pid before Start
        Task<WaitResponse> wait = shim.Task.WaitAsync(new WaitRequest { Id = id }, cancellationToken: Token).ResponseAsync;

        StartResponse started = await shim.Task.StartAsync(new StartRequest { Id = id }, cancellationToken: Token);
        Assert.NotEqual(0u, started.Pid);
        await fifos.WaitForOutputAsync("started\n", Bound);
        StateResponse running = await shim.Task.StateAsync(new StateRequest { Id = id }, cancellationToken: Token);
        Assert.Equal(Status.Running, running.Status);
        PidsResponse pids = await shim.Task.PidsAsync(new PidsRequest { Id = id }, cancellationToken: Token);
        Assert.Single(pids.Processes);

        fifos.Write("ping\n");
        await fifos.WaitForOutputAsync("got-ping\n", Bound);
        WaitResponse exited = await wait.WaitAsync(Bound, Token);
        Assert.Equal(3u, exited.ExitStatus);

        await AssertStatus(StatusCode.NotFound, "already finished",
            shim.Task.KillAsync(new KillRequest { Id = id, Signal = 9 }, cancellationToken: Token).ResponseAsync);
        DeleteResponse deleted = await shim.Task.DeleteAsync(new DeleteRequest { Id = id }, cancellationToken: Token);
        Assert.Equal(3u, deleted.ExitStatus);
        Assert.False(Directory.Exists(Path.Combine(shim.StandinState, root, id)), "runhcs delete --force did not run");
        Assert.Empty(Directory.GetFiles(shim.Bundle, "runhcs-*")); // per-call logs and pid files cleaned up

        await shim.Task.ShutdownAsync(new ShutdownRequest { Id = id }, cancellationToken: Token);
        await UntilAsync(() => !Posix.IsAlive(daemon), "daemon still running after Shutdown");
        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"], shim.Events.Topics);
    }

    [Fact]
    public async Task An_lcow_container_gets_hyperv_execs_pause_kill_all_and_its_odd_debug_logs_forwarded()
    {
        string id = NewId("lcow");
        string[] rawLines =
        [
            """{"level":"warning","msg":"odd-warning","vmid":"uvm-7","time":"2024-01-02T03:04:05Z"}""" + "\n",
            "not json at all\n",
            """{"level":"fatal","msg":"fatal-but-fine"}""" + "\n",
            """{"level":"panic","msg":"panic-but-fine","level2":{}}""" + "\n",
            """{"msg":123,"time":false}""" + "\n",
            """{"level":"info","msg":"partial-tail""",
        ];
        await using RunhcsShim shim = await RunhcsShim.StartAsync(id, Spec(["sleep", "300"],
            new Dictionary<string, string> { ["runhcs-standin/shim-log-lines"] = JsonSerializer.Serialize(rawLines) }), Token);
        using var fifos = new Fifos();
        int daemon = await shim.DaemonPidAsync();

        await shim.Task.CreateAsync(new CreateTaskRequest
        {
            Id = id,
            Bundle = shim.Bundle,
            Stdout = fifos.Stdout,
            Stderr = fifos.Stderr,
            Rootfs = { LayerMount("lcow-layer", "/lcow/scratch", "/lcow/top", "/lcow/base") },
            Options = new Any { TypeUrl = "containerd.runhcs.v1.Options", Value = new Options { Debug = true }.ToByteString() },
        }, cancellationToken: Token);
        JsonNode spec = JsonNode.Parse(File.ReadAllText(Path.Combine(shim.Bundle, "config.json")))!;
        Assert.Equal(["/lcow/top", "/lcow/base", "/lcow/scratch"], LayerFolders(shim.Bundle));
        Assert.IsType<JsonObject>(spec["windows"]!["hyperv"]);
        Task<WaitResponse> initWait = shim.Task.WaitAsync(new WaitRequest { Id = id }, cancellationToken: Token).ResponseAsync;
        await shim.Task.StartAsync(new StartRequest { Id = id }, cancellationToken: Token);

        // The shim's log re-emits runhcs's entries at their levels, fields and time included.
        await shim.WaitForLogAsync("odd-warning", Bound);
        await shim.WaitForLogAsync("panic-but-fine", Bound);
        await shim.WaitForLogAsync("utility VM started", Bound); // the --vm-log stream
        string log = shim.ShimLog;
        string warning = Line(log, "odd-warning");
        Assert.Contains("level=warn", warning, StringComparison.Ordinal);
        Assert.Contains("vmid=", warning, StringComparison.Ordinal);
        Assert.Contains("uvm-7", warning, StringComparison.Ordinal);
        Assert.Contains("runhcsTime=", warning, StringComparison.Ordinal);
        Assert.Contains("2024-01-02T03:04:05", warning, StringComparison.Ordinal);
        Assert.Contains("not json at all", log, StringComparison.Ordinal);
        Assert.DoesNotContain("level=info", Line(log, "fatal-but-fine"), StringComparison.Ordinal);

        // fatal and panic ended nothing: the shim still serves and the container still runs.
        Assert.Equal(Status.Running, (await shim.Task.StateAsync(new StateRequest { Id = id }, cancellationToken: Token)).Status);

        using var execFifos = new Fifos();
        await shim.Task.ExecAsync(new ExecProcessRequest
        {
            Id = id,
            ExecId = "quick",
            Stdout = execFifos.Stdout,
            Stderr = execFifos.Stderr,
            Spec = ProcessSpec(["sh", "-c", "echo exec-out; exit 5"]),
        }, cancellationToken: Token);
        Task<WaitResponse> quickWait = shim.Task.WaitAsync(new WaitRequest { Id = id, ExecId = "quick" }, cancellationToken: Token).ResponseAsync;
        await shim.Task.StartAsync(new StartRequest { Id = id, ExecId = "quick" }, cancellationToken: Token);
        await execFifos.WaitForOutputAsync("exec-out\n", Bound);
        Assert.Equal(5u, (await quickWait.WaitAsync(Bound, Token)).ExitStatus);

        await shim.Task.ExecAsync(new ExecProcessRequest
        {
            Id = id, ExecId = "long", Spec = ProcessSpec(["sleep", "300"]),
        }, cancellationToken: Token);
        Task<WaitResponse> longWait = shim.Task.WaitAsync(new WaitRequest { Id = id, ExecId = "long" }, cancellationToken: Token).ResponseAsync;
        await shim.Task.StartAsync(new StartRequest { Id = id, ExecId = "long" }, cancellationToken: Token);
        PidsResponse pids = await shim.Task.PidsAsync(new PidsRequest { Id = id }, cancellationToken: Token);
        Assert.Equal(2, pids.Processes.Count);

        await shim.Task.PauseAsync(new PauseRequest { Id = id }, cancellationToken: Token);
        Assert.Equal(Status.Paused, (await shim.Task.StateAsync(new StateRequest { Id = id }, cancellationToken: Token)).Status);
        await shim.Task.ResumeAsync(new ResumeRequest { Id = id }, cancellationToken: Token);

        // runhcs kill reaches only the init process; all=true must end the exec too.
        await shim.Task.KillAsync(new KillRequest { Id = id, Signal = 9, All = true }, cancellationToken: Token);
        Assert.Equal(137u, (await longWait.WaitAsync(Bound, Token)).ExitStatus);
        Assert.Equal(137u, (await initWait.WaitAsync(Bound, Token)).ExitStatus);
        await shim.WaitForLogAsync("partial-tail", Bound); // delivered when the shim's log stream ended
        string tail = Line(shim.ShimLog, "partial-tail");
        Assert.True(tail.Contains("partial=\"True\"", StringComparison.Ordinal), tail);

        await shim.Task.DeleteAsync(new DeleteRequest { Id = id, ExecId = "quick" }, cancellationToken: Token);
        await shim.Task.DeleteAsync(new DeleteRequest { Id = id, ExecId = "long" }, cancellationToken: Token);
        await shim.Task.DeleteAsync(new DeleteRequest { Id = id }, cancellationToken: Token);
        await shim.Task.ShutdownAsync(new ShutdownRequest { Id = id }, cancellationToken: Token);
        await UntilAsync(() => !Posix.IsAlive(daemon), "daemon still running after Shutdown");
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(shim.Bundle)!, "rh-*.sock")); // log sockets removed
        Assert.Empty(Posix.ProcessesMatching(id)); // no runhcs shim or container process left behind
    }

    [Fact]
    public async Task Bad_mounts_and_runhcs_failures_come_back_with_their_status_and_message()
    {
        string id = NewId("bad");
        await using RunhcsShim shim = await RunhcsShim.StartAsync(id, Spec([]), Token);
        string before = File.ReadAllText(Path.Combine(shim.Bundle, "config.json"));

        await AssertStatus(StatusCode.InvalidArgument, "exactly one rootfs mount", shim.Task.CreateAsync(new CreateTaskRequest
        {
            Id = id, Bundle = shim.Bundle,
            Rootfs = { LayerMount("windows-layer", "s1", "b"), LayerMount("windows-layer", "s2", "b") },
        }, cancellationToken: Token).ResponseAsync);
        await AssertStatus(StatusCode.InvalidArgument, "\"overlay\"", shim.Task.CreateAsync(new CreateTaskRequest
        {
            Id = id, Bundle = shim.Bundle, Rootfs = { new Mount { Type = "overlay", Source = "overlay" } },
        }, cancellationToken: Token).ResponseAsync);
        Assert.Equal(before, File.ReadAllText(Path.Combine(shim.Bundle, "config.json")));

        // A valid mount, but runhcs refuses the spec (no args): its own message, as InvalidArgument.
        await AssertStatus(StatusCode.InvalidArgument, "runhcs create: invalid spec: process.args is empty",
            shim.Task.CreateAsync(new CreateTaskRequest
            {
                Id = id, Bundle = shim.Bundle, Rootfs = { LayerMount("windows-layer", "scratch", "base") },
            }, cancellationToken: Token).ResponseAsync);

        // The shim keeps serving, and the id is free again after the failures.
        await AssertStatus(StatusCode.NotFound, id,
            shim.Task.StateAsync(new StateRequest { Id = id }, cancellationToken: Token).ResponseAsync);
        await shim.Task.ShutdownAsync(new ShutdownRequest { Id = id }, cancellationToken: Token);
    }

    private static Any ProcessSpec(string[] args) => new()
    {
        TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/Process",
        Value = ByteString.CopyFromUtf8(JsonSerializer.Serialize(new
        {
            args, env = new[] { "PATH=/usr/sbin:/usr/bin:/sbin:/bin" }, cwd = "/",
        })),
    };

    private static string Line(string log, string containing) =>
        log.Split('\n').FirstOrDefault(l => l.Contains(containing, StringComparison.Ordinal))
        ?? throw new Xunit.Sdk.XunitException($"no log line with \"{containing}\" in:\n{log}");

    private static async Task AssertStatus(StatusCode code, string detail, Task call)
    {
        RpcException ex = await Assert.ThrowsAsync<RpcException>(() => call);
        Assert.Equal(code, ex.StatusCode);
        Assert.Contains(detail, ex.Status.Detail, StringComparison.Ordinal);
    }

    private static async Task UntilAsync(Func<bool> condition, string failure)
    {
        DateTime deadline = DateTime.UtcNow + Bound;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(50, Token);
        }
    }
}
