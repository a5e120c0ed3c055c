using System.IO.Pipes;
using System.Text;
using System.Text.Json;
using PluggableShim.Contracts.Task;
using PluggableShim.EndToEnd.Tests.Support;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;
using PluggableShim.Ttrpc;
using Task = System.Threading.Tasks.Task;
using TaskClient = PluggableShim.Contracts.Task.Task.TaskClient;

namespace PluggableShim.EndToEnd.Tests.Daemon;

/// <summary>
/// The Windows host path, run here: the published managed host with the test switch
/// <c>PLUGGABLESHIM_PORTABLE_HOST=1</c> does <c>start</c> with Process.Start, the daemon serves
/// its own named pipe (.NET's emulation on Linux) and reports readiness on stdout, the group lock
/// is an exclusive file, the shim's log is served on <c>containerd-shim-NS-ID-log</c>, and
/// <c>delete</c> kills a dead daemon's init through Process. Events go to the real containerd.
/// What only Windows does (pipe ACLs, handle inheritance, Windows' own process creation) is not
/// exercised.
/// </summary>
[Collection(ContainerdCollection.Name)]
public sealed class PortableHostTests(ContainerdFixture fixture) : IDisposable
{
    private const string Ns = "e2e-port";
    private readonly List<string> _bundles = [];

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string NewId(string stem) => $"{stem}-{Guid.NewGuid().ToString("N")[..8]}";

    private string Host => Path.Combine(fixture.ShimDirectory, "pluggableshim-daemon");

    public void Dispose()
    {
        foreach (string bundle in _bundles)
        {
            Directory.Delete(bundle, recursive: true);
        }
    }

    [Fact]
    public async Task Start_serves_a_pipe_the_task_runs_with_pipe_IO_its_log_is_served_and_Shutdown_leaves_nothing_behind()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("port");
        string bundle = WriteBundle(["sh", "-c", "read line; echo got-$line; echo oops >&2; exit 3"]);

        CommandResult started = await ShimAsync(containerd, id, bundle, "start");

        // ProcessRunner reads start's stdout and stderr to EOF: the daemon holds neither.
        started.EnsureSuccess();
        string expected = $@"\\.\pipe\ProtectedPrefix\Administrators\containerd-shim-{Ns}-{id}-pipe";
        Assert.Equal(expected, started.Stdout);
        Assert.Equal("", started.Stderr);
        Assert.Equal(expected, await File.ReadAllTextAsync(Path.Combine(bundle, "address"), Token));

        await using TtrpcClient client = await TtrpcClient.ConnectAsync(started.Stdout, cancellationToken: Token);
        var task = new TaskClient(client);
        int daemon = (int)(await task.ConnectAsync(new ConnectRequest { Id = id }, cancellationToken: Token)).ShimPid;
        Assert.True(Posix.IsAlive(daemon));
        string marker = Assert.Single(Directory.GetFiles("/run/containerd/s", "*.pipe"), f => MarkerOf(f, daemon));
        using var log = new NamedPipeClientStream(".", $"containerd-shim-{Ns}-{id}-log", PipeDirection.In);
        await log.ConnectAsync(TimeSpan.FromSeconds(10), Token);
        Task<string> logged = ReadUntilAsync(log, "shim serving");

        // The client's side of Windows IO: it serves the pipes, the shim dials them in Create.
        using var stdin = new NamedPipeServerStream($"ctr-{id}-stdin", PipeDirection.Out, 1, PipeTransmissionMode.Byte, PipeOptions.Asynchronous);
        using var stdout = new NamedPipeServerStream($"ctr-{id}-stdout", PipeDirection.In, 1, PipeTransmissionMode.Byte, PipeOptions.Asynchronous);
        using var stderr = new NamedPipeServerStream($"ctr-{id}-stderr", PipeDirection.In, 1, PipeTransmissionMode.Byte, PipeOptions.Asynchronous);
        Task dialled = Task.WhenAll(stdin.WaitForConnectionAsync(Token), stdout.WaitForConnectionAsync(Token), stderr.WaitForConnectionAsync(Token));
        await task.CreateAsync(new CreateTaskRequest
        {
            Id = id, Bundle = bundle,
            Stdin = $@"\\.\pipe\ctr-{id}-stdin", Stdout = $@"\\.\pipe\ctr-{id}-stdout", Stderr = $@"\\.\pipe\ctr-{id}-stderr",
        }, cancellationToken: Token);
        await dialled.WaitAsync(TimeSpan.FromSeconds(10), Token);
        Task<WaitResponse> wait = task.WaitAsync(new WaitRequest { Id = id }, cancellationToken: Token).ResponseAsync;
        await task.StartAsync(new StartRequest { Id = id }, cancellationToken: Token);
        await stdin.WriteAsync("ping\n"u8.ToArray(), Token);
        await stdin.FlushAsync(Token);
        Assert.Equal(3u, (await wait.WaitAsync(TimeSpan.FromSeconds(10), Token)).ExitStatus);
        Assert.Equal("got-ping\n", await new StreamReader(stdout).ReadToEndAsync(Token).WaitAsync(TimeSpan.FromSeconds(10), Token));
        Assert.Equal("oops\n", await new StreamReader(stderr).ReadToEndAsync(Token).WaitAsync(TimeSpan.FromSeconds(10), Token));
        Assert.Contains($"shim serving {id} with plugin fake", await logged.WaitAsync(TimeSpan.FromSeconds(10), Token), StringComparison.Ordinal);
        await task.DeleteAsync(new DeleteRequest { Id = id }, cancellationToken: Token);
        await task.ShutdownAsync(new ShutdownRequest { Id = id }, cancellationToken: Token);

        await Poll.UntilAsync(() => !Posix.IsAlive(daemon), "daemon still running after Shutdown");
        Assert.False(File.Exists(marker), "the daemon's marker is left behind");
        Assert.False(File.Exists(marker + ".lock"), "the group lock is left behind");
        Assert.False(File.Exists(Path.Combine(Path.GetTempPath(), $@"CoreFxPipe_ProtectedPrefix\Administrators\containerd-shim-{Ns}-{id}-pipe")),
            "the emulated pipe's socket is left behind");
        Assert.False(File.Exists(Path.Combine(Path.GetTempPath(), $"CoreFxPipe_containerd-shim-{Ns}-{id}-log")),
            "the emulated log pipe's socket is left behind");
        await containerd.Events.WaitForAsync(e => e.ContainerId == id && e.Topic == "/tasks/delete", TimeSpan.FromSeconds(10), Token);
        Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"], containerd.Events.For(Ns, id).Select(e => e.Topic));
    }

    [Fact]
    public async Task A_pods_second_container_joins_the_daemon_serving_the_pods_pipe()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string pod = NewId("pod");
        string member = pod + "-app";
        string podBundle = WriteBundle(["sleep", "300"], pod);
        string memberBundle = WriteBundle(["sleep", "300"], pod);

        CommandResult first = (await ShimAsync(containerd, pod, podBundle, "start")).EnsureSuccess();
        CommandResult second = (await ShimAsync(containerd, member, memberBundle, "start")).EnsureSuccess();

        Assert.Equal($@"\\.\pipe\ProtectedPrefix\Administrators\containerd-shim-{Ns}-{pod}-pipe", first.Stdout);
        Assert.Equal(first.Stdout, second.Stdout);
        await using TtrpcClient client = await TtrpcClient.ConnectAsync(first.Stdout, cancellationToken: Token);
        var task = new TaskClient(client);
        uint daemon = (await task.ConnectAsync(new ConnectRequest { Id = pod }, cancellationToken: Token)).ShimPid;
        try
        {
            Assert.Equal(daemon, (await task.ConnectAsync(new ConnectRequest { Id = member }, cancellationToken: Token)).ShimPid);
            foreach ((string id, string bundle) in new[] { (pod, podBundle), (member, memberBundle) })
            {
                await task.CreateAsync(new CreateTaskRequest { Id = id, Bundle = bundle }, cancellationToken: Token);
                await task.StartAsync(new StartRequest { Id = id }, cancellationToken: Token);
            }

            foreach (string id in new[] { pod, member })
            {
                await task.KillAsync(new KillRequest { Id = id, Signal = 9 }, cancellationToken: Token);
                Assert.Equal(137u, (await task.WaitAsync(new WaitRequest { Id = id }, cancellationToken: Token)).ExitStatus);
                await task.DeleteAsync(new DeleteRequest { Id = id }, cancellationToken: Token);
                await task.ShutdownAsync(new ShutdownRequest { Id = id }, cancellationToken: Token);
            }

            await Poll.UntilAsync(() => !Posix.IsAlive((int)daemon), "the pod's daemon still running after its last Shutdown");
        }
        finally
        {
            if (Posix.IsAlive((int)daemon))
            {
                Posix.Kill((int)daemon, 9);
            }
        }
    }

    [Fact]
    public async Task Delete_after_a_killed_daemon_kills_the_recorded_init_and_removes_the_marker()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("portdel");
        string marker = $"sleep 3{Random.Shared.Next(100, 999)}.{Random.Shared.Next(1000, 9999)}";
        string bundle = WriteBundle(["sh", "-c", marker]);
        CommandResult started = (await ShimAsync(containerd, id, bundle, "start")).EnsureSuccess();
        await using TtrpcClient client = await TtrpcClient.ConnectAsync(started.Stdout, cancellationToken: Token);
        var task = new TaskClient(client);
        int daemon = (int)(await task.ConnectAsync(new ConnectRequest { Id = id }, cancellationToken: Token)).ShimPid;
        await task.CreateAsync(new CreateTaskRequest { Id = id, Bundle = bundle }, cancellationToken: Token);
        int init = (int)(await task.StartAsync(new StartRequest { Id = id }, cancellationToken: Token)).Pid;
        string ours = Assert.Single(Directory.GetFiles("/run/containerd/s", "*.pipe"), f => MarkerOf(f, daemon));
        try
        {
            Posix.Kill(daemon, 9);
            await Poll.UntilAsync(() => !Posix.IsAlive(daemon), "daemon survived SIGKILL");
            Assert.True(Posix.IsAlive(init), "the init died with its daemon: nothing for delete to do");

            CommandResult deleted = (await ShimAsync(containerd, id, bundle, "-bundle", bundle, "delete")).EnsureSuccess();

            DeleteResponse response = DeleteResponse.Parser.ParseFrom(Convert.FromBase64String(deleted.Stdout));
            Assert.Equal((uint)init, response.Pid);
            Assert.Equal(137u, response.ExitStatus);
            await Poll.UntilAsync(() => !Posix.IsAlive(init), "delete left the dead daemon's init running");
            Assert.False(File.Exists(ours), "the dead daemon's marker is left behind");
            Assert.False(File.Exists(ours + ".lock"), "the group lock is left behind");
            Assert.False(File.Exists(Path.Combine(Path.GetTempPath(), $@"CoreFxPipe_ProtectedPrefix\Administrators\containerd-shim-{Ns}-{id}-pipe")),
                "the killed daemon's emulated pipe socket is left behind");
            Assert.Contains("killed init process", deleted.Stderr, StringComparison.Ordinal);

            // Again, with nothing left to kill: success all the same.
            CommandResult again = (await ShimAsync(containerd, id, bundle, "-bundle", bundle, "delete")).EnsureSuccess();
            Assert.Equal(137u, DeleteResponse.Parser.ParseFrom(Convert.FromBase64String(again.Stdout)).ExitStatus);
        }
        finally
        {
            foreach (int pid in new[] { daemon, init }.Where(Posix.IsAlive))
            {
                Posix.Kill(pid, 9);
            }
        }
    }

    [Fact]
    public async Task Delete_while_the_group_lock_stays_held_still_succeeds_and_leaves_the_marker_for_later()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("portlck");
        string marker = $"sleep 3{Random.Shared.Next(100, 999)}.{Random.Shared.Next(1000, 9999)}";
        string bundle = WriteBundle(["sh", "-c", marker]);
        CommandResult started = (await ShimAsync(containerd, id, bundle, "start")).EnsureSuccess();
        await using TtrpcClient client = await TtrpcClient.ConnectAsync(started.Stdout, cancellationToken: Token);
        var task = new TaskClient(client);
        int daemon = (int)(await task.ConnectAsync(new ConnectRequest { Id = id }, cancellationToken: Token)).ShimPid;
        await task.CreateAsync(new CreateTaskRequest { Id = id, Bundle = bundle }, cancellationToken: Token);
        int init = (int)(await task.StartAsync(new StartRequest { Id = id }, cancellationToken: Token)).Pid;
        string ours = Assert.Single(Directory.GetFiles("/run/containerd/s", "*.pipe"), f => MarkerOf(f, daemon));
        try
        {
            Posix.Kill(daemon, 9);
            await Poll.UntilAsync(() => !Posix.IsAlive(daemon), "daemon survived SIGKILL");
            CommandResult deleted;
            // The portable group lock is this file opened FileShare.None (an flock here): a start stuck holding it.
            using (new FileStream(ours + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
            {
                deleted = (await ShimAsync(containerd, id, bundle, "-bundle", bundle, "delete")).EnsureSuccess();
            }

            DeleteResponse response = DeleteResponse.Parser.ParseFrom(Convert.FromBase64String(deleted.Stdout));
            Assert.Equal((uint)init, response.Pid);
            Assert.Equal(137u, response.ExitStatus);
            await Poll.UntilAsync(() => !Posix.IsAlive(init), "delete left the dead daemon's init running");
            // (The exit status is base64's here: the stack trace a failing delete prints is looked for instead.)
            Assert.DoesNotContain("Exception", deleted.Stderr, StringComparison.Ordinal);
            Assert.Contains("still held", deleted.Stderr, StringComparison.Ordinal);
            Assert.True(File.Exists(ours), "the marker was removed without the group lock");

            // Once the lock is free, a later delete tidies up.
            (await ShimAsync(containerd, id, bundle, "-bundle", bundle, "delete")).EnsureSuccess();
            Assert.False(File.Exists(ours), "the dead daemon's marker is left behind");
            Assert.False(File.Exists(ours + ".lock"), "the group lock is left behind");
        }
        finally
        {
            foreach (int pid in new[] { daemon, init }.Where(Posix.IsAlive))
            {
                Posix.Kill(pid, 9);
            }
        }
    }

    [Fact]
    public async Task A_daemon_that_cannot_load_its_plugin_becomes_starts_one_line_error_and_leaves_nothing()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("portbad");
        // Installed as far as start can tell (the folder exists), but there is nothing to load.
        string plugin = "pshbroken" + Guid.NewGuid().ToString("N")[..8];
        string folder = Path.Combine(fixture.ShimDirectory, "plugins", plugin);
        Directory.CreateDirectory(folder);
        try
        {
            string bundle = WriteBundle(["true"], plugin: plugin);
            string[] before = Directory.GetFiles("/run/containerd/s", "*.pipe*");

            CommandResult started = await ShimAsync(containerd, id, bundle, "start");

            Assert.Equal(1, started.ExitCode);
            Assert.Equal("", started.Stdout);
            Assert.StartsWith($"start: plugin {plugin}", started.Stderr, StringComparison.Ordinal);
            Assert.Contains($"no {plugin}.dll", started.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', started.Stderr);
            Assert.Empty(Posix.ProcessesMatching(id));
            Assert.Equal(before, Directory.GetFiles("/run/containerd/s", "*.pipe*"));
            Assert.False(File.Exists(Path.Combine(bundle, "address")), "start wrote an address for a daemon that failed");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // The marker a daemon leaves while it serves holds its pid.
    private static bool MarkerOf(string path, int daemon)
    {
        try
        {
            return File.ReadAllText(path) == daemon.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return false; // another daemon just removed its own
        }
    }

    private async Task<CommandResult> ShimAsync(LocalContainerd containerd, string id, string bundle, params string[] action)
    {
        string[] args = ["-namespace", Ns, "-address", containerd.Address, "-publish-binary", "/usr/bin/containerd", "-id", id, .. action];
        string command = string.Join(' ', args.Select(a => $"'{a}'"));
        // delete prints raw protobuf: carried through the shell as base64, with delete's exit status.
        string run = action[^1] == "delete" ? $"set -o pipefail; '{Host}' {command} | base64 -w0" : $"exec '{Host}' {command}";
        return await ProcessRunner.RunAsync(
            "/bin/bash",
            ["-c", $"cd '{bundle}' && {run}"],
            TimeSpan.FromSeconds(60),
            environment: new Dictionary<string, string>
            {
                ["TTRPC_ADDRESS"] = containerd.TtrpcAddress,
                ["PLUGGABLESHIM_PORTABLE_HOST"] = "1",
            },
            cancellationToken: Token);
    }

    private string WriteBundle(string[] args, string? sandbox = null, string plugin = "fake")
    {
        string bundle = Directory.CreateTempSubdirectory("psh-port-").FullName;
        _bundles.Add(bundle);
        var annotations = new Dictionary<string, string> { ["io.pluggableshim.plugin"] = plugin };
        if (sandbox is not null)
        {
            annotations["io.kubernetes.cri.sandbox-id"] = sandbox;
        }

        var spec = new
        {
            ociVersion = "1.0.2",
            process = new { args, env = new[] { "PATH=/usr/sbin:/usr/bin:/sbin:/bin" }, cwd = "/" },
            root = new { path = "rootfs" },
            annotations,
        };
        File.WriteAllText(Path.Combine(bundle, "config.json"), JsonSerializer.Serialize(spec));
        return bundle;
    }

    private static async Task<string> ReadUntilAsync(Stream stream, string text)
    {
        var seen = new StringBuilder();
        byte[] buffer = new byte[4096];
        while (!seen.ToString().Contains(text, StringComparison.Ordinal))
        {
            int n = await stream.ReadAsync(buffer, Token);
            if (n == 0)
            {
                break;
            }

            seen.Append(Encoding.UTF8.GetString(buffer, 0, n));
        }

        return seen.ToString();
    }
}
