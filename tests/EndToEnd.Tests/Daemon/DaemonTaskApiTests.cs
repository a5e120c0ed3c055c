using Grpc.Core;
using PluggableShim.Contracts.Task;
using PluggableShim.EndToEnd.Tests.Support;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;
using Task = System.Threading.Tasks.Task;

namespace PluggableShim.EndToEnd.Tests.Daemon;

/// <summary>
/// The published shim's daemon, launched through <c>start</c> as containerd does, driven over the
/// address start printed with calls ctr does not make; its events go to the real containerd.
/// Every test runs once per transport: the plain address (ttrpc, Task v2), bootstrap JSON v3 over
/// ttrpc (Task v3), and gRPC with v2 and v3 (a generated gRPC client on the printed socket).
/// </summary>
[Collection(ContainerdCollection.Name)]
public sealed class DaemonTaskApiTests(ContainerdFixture fixture)
{
    private const string Ns = "e2e-daemon";

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string NewId(string stem) => $"{stem}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>The shim config's startOutput values the tests run under.</summary>
    public static TheoryData<string> Transports => ["address", "json-v3-ttrpc", "json-v2-grpc", "json-v3-grpc"];

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task CloseIO_gives_the_process_EOF_and_output_written_after_it_still_arrives(string transport)
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("closeio");
        await using LaunchedShim shim = await LaunchedShim.StartAsync(
            containerd, fixture.FakeShim, Ns, id, ["sh", "-c", "cat; echo after-eof"], Token, transport);
        using var fifos = new ClientFifos();
        int daemon = await shim.DaemonPidAsync();

        await shim.Task.CreateAsync(new CreateTaskRequest
        {
            Id = id, Bundle = shim.Bundle, Stdin = fifos.Stdin, Stdout = fifos.Stdout, Stderr = fifos.Stderr,
        }, cancellationToken: Token);
        Task<WaitResponse> wait = shim.Task.WaitAsync(new WaitRequest { Id = id }, cancellationToken: Token).ResponseAsync;
        await shim.Task.StartAsync(new StartRequest { Id = id }, cancellationToken: Token);

        fifos.Write("ping\n");
        await fifos.WaitForOutputAsync("ping\n", TimeSpan.FromSeconds(10));
        Assert.False(wait.IsCompleted, "the process ended before its stdin was closed");

        await shim.Task.CloseIOAsync(new CloseIORequest { Id = id, Stdin = true }, cancellationToken: Token);
        await shim.Task.CloseIOAsync(new CloseIORequest { Id = id, Stdin = true }, cancellationToken: Token); // idempotent
        WaitResponse exited = await wait.WaitAsync(TimeSpan.FromSeconds(10), Token);
        await fifos.WaitForOutputAsync("after-eof\n", TimeSpan.FromSeconds(10));
        Assert.Equal(0u, exited.ExitStatus);

        await shim.Task.DeleteAsync(new DeleteRequest { Id = id }, cancellationToken: Token);
        await shim.Task.ShutdownAsync(new ShutdownRequest { Id = id }, cancellationToken: Token);
        await Poll.UntilAsync(() => !Posix.IsAlive(daemon), "daemon still running after Shutdown");
        Assert.False(File.Exists(shim.SocketPath), "socket left behind");
        Assert.False(File.Exists(shim.Printed.SocketPath), "printed socket left behind");

        await containerd.Events.WaitForAsync(e => e.ContainerId == id && e.Topic == "/tasks/delete", TimeSpan.FromSeconds(10), Token);
        Assert.Equal(
            ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"],
            containerd.Events.For(Ns, id).Select(e => e.Topic));
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Bad_input_gets_clear_status_codes_and_the_shim_keeps_serving(string transport)
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("badinput");
        await using LaunchedShim shim = await LaunchedShim.StartAsync(containerd, fixture.FakeShim, Ns, id, ["sleep", "300"], Token, transport);
        await shim.Task.CreateAsync(new CreateTaskRequest { Id = id, Bundle = shim.Bundle }, cancellationToken: Token);
        await shim.Task.StartAsync(new StartRequest { Id = id }, cancellationToken: Token);

        await AssertStatus(StatusCode.InvalidArgument, "container id",
            shim.Task.CreateAsync(new CreateTaskRequest { Id = "../../etc", Bundle = shim.Bundle }, cancellationToken: Token).ResponseAsync);
        await AssertStatus(StatusCode.InvalidArgument, "bundle",
            shim.Task.CreateAsync(new CreateTaskRequest { Id = "other", Bundle = "relative/path" }, cancellationToken: Token).ResponseAsync);
        await AssertStatus(StatusCode.NotFound, "nosuch",
            shim.Task.StateAsync(new StateRequest { Id = "nosuch" }, cancellationToken: Token).ResponseAsync);
        await AssertStatus(StatusCode.InvalidArgument, "exec id",
            shim.Task.ExecAsync(new ExecProcessRequest { Id = id, ExecId = "a/b" }, cancellationToken: Token).ResponseAsync);
        await AssertStatus(StatusCode.InvalidArgument, "spec",
            shim.Task.ExecAsync(new ExecProcessRequest { Id = id, ExecId = "nospec" }, cancellationToken: Token).ResponseAsync);
        await AssertStatus(StatusCode.InvalidArgument, "signal",
            shim.Task.KillAsync(new KillRequest { Id = id, Signal = 9999 }, cancellationToken: Token).ResponseAsync);
        await AssertStatus(StatusCode.FailedPrecondition, "running",
            shim.Task.DeleteAsync(new DeleteRequest { Id = id }, cancellationToken: Token).ResponseAsync);

        StateResponse state = await shim.Task.StateAsync(new StateRequest { Id = id }, cancellationToken: Token);
        Assert.Equal(Contracts.Types.Status.Running, state.Status);

        await shim.Task.KillAsync(new KillRequest { Id = id, Signal = 9 }, cancellationToken: Token);
        WaitResponse exited = await shim.Task.WaitAsync(new WaitRequest { Id = id }, cancellationToken: Token);
        Assert.Equal(137u, exited.ExitStatus);
        await shim.Task.DeleteAsync(new DeleteRequest { Id = id }, cancellationToken: Token);
        await shim.Task.ShutdownAsync(new ShutdownRequest { Id = id }, cancellationToken: Token);
    }

    [Theory]
    [MemberData(nameof(Transports))]
    public async Task Delete_after_the_daemon_was_killed_reaps_its_process_and_succeeds_again_when_all_is_gone(string transport)
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("orphan");
        await using LaunchedShim shim = await LaunchedShim.StartAsync(containerd, fixture.FakeShim, Ns, id, ["sleep", "300"], Token, transport);
        await shim.Task.CreateAsync(new CreateTaskRequest { Id = id, Bundle = shim.Bundle }, cancellationToken: Token);
        int init = (int)(await shim.Task.StartAsync(new StartRequest { Id = id }, cancellationToken: Token)).Pid;
        int daemon = await shim.DaemonPidAsync();

        Assert.Equal(0, Posix.Kill(daemon, 9));
        await Poll.UntilAsync(() => !Posix.IsAlive(daemon), "daemon survived SIGKILL");

        for (int round = 0; round < 2; round++)
        {
            CommandResult deleted = await ProcessRunner.RunAsync(
                "/bin/bash", // pipefail: the exit status is delete's, not base64's
                ["-c", $"set -o pipefail; '{fixture.FakeShim}' -namespace {Ns} -address '{containerd.Address}' " +
                       $"-publish-binary /usr/bin/containerd -id {id} -bundle '{shim.Bundle}' delete | base64 -w0"],
                TimeSpan.FromSeconds(30),
                cancellationToken: Token);
            deleted.EnsureSuccess();
            DeleteResponse response = DeleteResponse.Parser.ParseFrom(Convert.FromBase64String(deleted.Stdout));
            Assert.Equal(137u, response.ExitStatus);
            Assert.NotNull(response.ExitedAt);
            if (round == 0)
            {
                Assert.Equal((uint)init, response.Pid);
            }
        }

        await Poll.UntilAsync(() => !Posix.IsAlive(init), "the dead shim's process was not reaped by delete");
        Assert.False(File.Exists(shim.SocketPath), "socket left behind");
        Assert.False(File.Exists(shim.Printed.SocketPath), "printed socket left behind");
    }

    private static async Task AssertStatus(StatusCode code, string mentions, Task call)
    {
        RpcException error = await Assert.ThrowsAsync<RpcException>(() => call);
        Assert.Equal(code, error.StatusCode);
        Assert.Contains(mentions, error.Status.Detail, StringComparison.OrdinalIgnoreCase);
    }
}
