using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using PluggableShim.Contracts.Bootstrap;
using PluggableShim.Contracts.Task;
using PluggableShim.EndToEnd.Tests.Support;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;
using ShimAddress = PluggableShim.Conformance.ShimAddress;
using ShimConnection = PluggableShim.Conformance.ShimConnection;
using RuntimeOptions = PluggableShim.Contracts.RuntimeOptions.Options;
using Task = System.Threading.Tasks.Task;
using TaskClient = PluggableShim.Contracts.Task.Task.TaskClient;

namespace PluggableShim.EndToEnd.Tests.Daemon;

/// <summary>
/// The published shim's transports and handshakes: what a ttrpc daemon loads, ttrpc and gRPC
/// serving one daemon at once, BootstrapParams and a bare Any on stdin of start, and pods whose
/// daemon serves gRPC.
/// </summary>
[Collection(ContainerdCollection.Name)]
public sealed class TransportTests(ContainerdFixture fixture)
{
    private const string Ns = "e2e-transport";

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string NewId(string stem) => $"{stem}-{Guid.NewGuid().ToString("N")[..8]}";

    [Theory]
    [InlineData("address", false)]
    [InlineData("json-v3-ttrpc", false)]
    [InlineData("json-v2-grpc", true)]
    public async Task Only_a_grpc_daemon_loads_AspNetCore(string startOutput, bool loadsAspNetCore)
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("aspnet");
        await using LaunchedShim shim = await LaunchedShim.StartAsync(
            containerd, fixture.FakeShim, Ns, id, ["sleep", "317"], Token, startOutput);

        // Assemblies are mapped files: the daemon's own memory map says what it loaded.
        string[] mapped = File.ReadAllLines($"/proc/{shim.DaemonPid}/maps")
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "")
            .Where(file => file.EndsWith(".dll", StringComparison.Ordinal))
            .Select(Path.GetFileName)
            .Distinct()
            .ToArray()!;
        Assert.Contains("PluggableShim.Ttrpc.dll", mapped); // the check sees the daemon's assemblies at all
        string[] aspNet = mapped.Where(f => f.StartsWith("Microsoft.AspNetCore.", StringComparison.Ordinal)).ToArray();
        if (loadsAspNetCore)
        {
            Assert.Contains("Microsoft.AspNetCore.Server.Kestrel.Core.dll", aspNet);
        }
        else
        {
            Assert.Empty(aspNet);
            Assert.DoesNotContain(mapped, f => f.StartsWith("Grpc.Net.", StringComparison.Ordinal) || f.StartsWith("Grpc.AspNetCore.", StringComparison.Ordinal));
        }

        await RunToCompletionAsync(shim);
        await Poll.UntilAsync(() => !Posix.IsAlive(shim.DaemonPid), "daemon still running after Shutdown");
    }

    [Fact]
    public async Task Ttrpc_and_grpc_serve_one_daemons_tasks_at_the_same_time()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("both");
        await using LaunchedShim shim = await LaunchedShim.StartAsync(
            containerd, fixture.FakeShim, Ns, id, ["sleep", "318"], Token, "json-v3-grpc");
        Assert.Equal("grpc", shim.Printed.Protocol);
        await using ShimConnection ttrpcConnection = await shim.ConnectTtrpcAsync(Token);
        TaskClient grpc = shim.Task;
        var ttrpc = new TaskClient(ttrpcConnection.CallInvoker);

        await grpc.CreateAsync(new CreateTaskRequest { Id = id, Bundle = shim.Bundle }, cancellationToken: Token);
        // Wait over ttrpc stays pending while gRPC starts the task and both are asked at once.
        Task<WaitResponse> wait = ttrpc.WaitAsync(new WaitRequest { Id = id }, cancellationToken: Token).ResponseAsync;
        uint pid = (await grpc.StartAsync(new StartRequest { Id = id }, cancellationToken: Token)).Pid;
        var states = new List<Task<StateResponse>>();
        for (int i = 0; i < 40; i++)
        {
            TaskClient client = i % 2 == 0 ? grpc : ttrpc;
            states.Add(client.StateAsync(new StateRequest { Id = id }, cancellationToken: Token).ResponseAsync);
        }

        foreach (StateResponse state in await Task.WhenAll(states))
        {
            Assert.Equal(Contracts.Types.Status.Running, state.Status);
            Assert.Equal(pid, state.Pid);
        }

        Assert.False(wait.IsCompleted, "Wait returned before the process ended");
        await grpc.KillAsync(new KillRequest { Id = id, Signal = 9 }, cancellationToken: Token);
        Assert.Equal(137u, (await wait.WaitAsync(TimeSpan.FromSeconds(10), Token)).ExitStatus);
        Assert.Equal(137u, (await ttrpc.DeleteAsync(new DeleteRequest { Id = id }, cancellationToken: Token)).ExitStatus);
        await grpc.ShutdownAsync(new ShutdownRequest { Id = id }, cancellationToken: Token);

        await Poll.UntilAsync(() => !Posix.IsAlive(shim.DaemonPid), "daemon still running after Shutdown");
        Assert.False(File.Exists(shim.Printed.SocketPath), "gRPC socket left behind");
        Assert.False(File.Exists(shim.SocketPath), "ttrpc socket left behind");
    }

    [Fact]
    public async Task BootstrapParams_on_stdin_select_the_config_and_the_address_events_go_to()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("bootstrap");
        string config = WriteConfig(new { startOutput = "json-v3-grpc" });
        try
        {
            var bootstrap = new BootstrapParams
            {
                InstanceId = id,
                Namespace = Ns,
                ContainerdVersion = "2.3.0",
                ContainerdTtrpcAddress = containerd.TtrpcAddress + ".absent",
                ContainerdGrpcAddress = containerd.Address,
                ContainerdBinary = "/usr/bin/containerd",
            };
            bootstrap.Extensions.Add(new BootstrapExtension { Value = RuntimeOptionsAny(config) });
            // Only BootstrapParams name a gRPC address; the environment's addresses lead nowhere.
            await using LaunchedShim shim = await LaunchedShim.StartAsync(
                containerd, fixture.FakeShim, Ns, id, ["sleep", "319"], Token, "address",
                new LaunchOptions
                {
                    Stdin = bootstrap.ToByteArray(),
                    Environment = new Dictionary<string, string>
                    {
                        ["GRPC_ADDRESS"] = "",
                        ["TTRPC_ADDRESS"] = containerd.TtrpcAddress + ".absent",
                    },
                });

            // The config named by the extension chose the form: v3 over gRPC.
            Assert.Equal(new ShimAddress("grpc", 3, shim.Printed.Address, IsJson: true), shim.Printed);
            await RunToCompletionAsync(shim);
            await containerd.Events.WaitForAsync(e => e.ContainerId == id && e.Topic == "/tasks/delete", TimeSpan.FromSeconds(10), Token);
            Assert.Equal(
                ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"],
                containerd.Events.For(Ns, id).Select(e => e.Topic));
        }
        finally
        {
            File.Delete(config);
        }
    }

    [Fact]
    public async Task A_bare_Any_on_stdin_still_selects_the_config()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("bareany");
        string config = WriteConfig(new { startOutput = "json-v2-ttrpc" });
        try
        {
            await using LaunchedShim shim = await LaunchedShim.StartAsync(
                containerd, fixture.FakeShim, Ns, id, ["sleep", "320"], Token, "address",
                new LaunchOptions { Stdin = RuntimeOptionsAny(config).ToByteArray() });

            Assert.Equal(new ShimAddress("ttrpc", 2, "unix://" + shim.SocketPath, IsJson: true), shim.Printed);
            await RunToCompletionAsync(shim);
            await containerd.Events.WaitForAsync(e => e.ContainerId == id && e.Topic == "/tasks/delete", TimeSpan.FromSeconds(10), Token);
        }
        finally
        {
            File.Delete(config);
        }
    }

    [Fact]
    public async Task Start_refuses_BootstrapParams_naming_another_shim_and_leaves_nothing()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("mismatch");
        var bootstrap = new BootstrapParams { InstanceId = "someone-else", Namespace = Ns, ContainerdVersion = "2.3.0" };

        ShimStartFailedException failed = await Assert.ThrowsAsync<ShimStartFailedException>(() => LaunchedShim.StartAsync(
            containerd, fixture.FakeShim, Ns, id, ["sleep", "321"], Token, "address",
            new LaunchOptions { Stdin = bootstrap.ToByteArray(), ExpectFailure = true }));

        Assert.Equal(1, failed.Result.ExitCode);
        Assert.Contains("someone-else", failed.Result.Stderr, StringComparison.Ordinal);
        Assert.Empty(failed.Result.Stdout);
    }

    [Fact]
    public async Task A_pod_member_joining_a_grpc_daemon_is_given_its_grpc_socket()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string sandbox = NewId("podgrpc");
        string member = NewId("member");
        var pod = new Dictionary<string, string> { ["io.kubernetes.cri.sandbox-id"] = sandbox };
        await using LaunchedShim first = await LaunchedShim.StartAsync(
            containerd, fixture.FakeShim, Ns, sandbox, ["sleep", "322"], Token, "json-v3-grpc", new LaunchOptions { Annotations = pod });
        await using LaunchedShim second = await LaunchedShim.StartAsync(
            containerd, fixture.FakeShim, Ns, member, ["sleep", "322"], Token, "json-v3-grpc", new LaunchOptions { Annotations = pod });

        Assert.Equal(first.Printed, second.Printed);
        Assert.Equal(first.DaemonPid, second.DaemonPid);

        // A member whose config asks for ttrpc joins the same daemon over ttrpc.
        string third = NewId("member");
        await using LaunchedShim ttrpcMember = await LaunchedShim.StartAsync(
            containerd, fixture.FakeShim, Ns, third, ["sleep", "322"], Token, "address", new LaunchOptions { Annotations = pod });
        Assert.Equal("unix://" + first.SocketPath, ttrpcMember.Printed.Address);
        Assert.Equal(first.DaemonPid, ttrpcMember.DaemonPid);

        foreach (LaunchedShim shim in new[] { first, second, ttrpcMember })
        {
            await RunToCompletionAsync(shim);
        }

        await Poll.UntilAsync(() => !Posix.IsAlive(first.DaemonPid), "daemon still running after the pod's last Shutdown");
        Assert.False(File.Exists(first.Printed.SocketPath), "gRPC socket left behind");
    }

    [Fact]
    public async Task A_pod_member_asking_for_grpc_from_a_ttrpc_daemon_fails_clearly()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string sandbox = NewId("podttrpc");
        var pod = new Dictionary<string, string> { ["io.kubernetes.cri.sandbox-id"] = sandbox };
        await using LaunchedShim first = await LaunchedShim.StartAsync(
            containerd, fixture.FakeShim, Ns, sandbox, ["sleep", "323"], Token, "address", new LaunchOptions { Annotations = pod });

        ShimStartFailedException failed = await Assert.ThrowsAsync<ShimStartFailedException>(() => LaunchedShim.StartAsync(
            containerd, fixture.FakeShim, Ns, NewId("member"), ["sleep", "323"], Token, "json-v3-grpc",
            new LaunchOptions { Annotations = pod, ExpectFailure = true }));

        Assert.Contains("does not serve gRPC", failed.Result.Stderr, StringComparison.Ordinal);
        // The refused member took no place: the daemon exits after the first container alone.
        await RunToCompletionAsync(first);
        await Poll.UntilAsync(() => !Posix.IsAlive(first.DaemonPid), "daemon kept alive by the refused member");
    }

    private static Any RuntimeOptionsAny(string configPath) => new()
    {
        TypeUrl = "runtimeoptions.v1.Options",
        Value = new RuntimeOptions { ConfigPath = configPath }.ToByteString(),
    };

    private static string WriteConfig(object config)
    {
        string path = Path.Combine(Path.GetTempPath(), $"psh-rtconfig-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, JsonSerializer.Serialize(config));
        return path;
    }

    private static async Task RunToCompletionAsync(LaunchedShim shim)
    {
        await shim.Task.CreateAsync(new CreateTaskRequest { Id = shim.Id, Bundle = shim.Bundle }, cancellationToken: Token);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        await shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token);
        await shim.Task.DeleteAsync(new DeleteRequest { Id = shim.Id }, cancellationToken: Token);
        await shim.Task.ShutdownAsync(new ShutdownRequest { Id = shim.Id }, cancellationToken: Token);
    }
}
