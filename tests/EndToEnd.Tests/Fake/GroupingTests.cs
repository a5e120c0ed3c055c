using PluggableShim.EndToEnd.Tests.Support;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;

namespace PluggableShim.EndToEnd.Tests.Fake;

/// <summary>
/// A pod's containers (same <c>io.kubernetes.cri.sandbox-id</c>) share one daemon, driven
/// through ctr as CRI would drive it.
/// </summary>
[Collection(ContainerdCollection.Name)]
public sealed class GroupingTests(ContainerdFixture fixture) : IDisposable
{
    private const string Ns = "e2e-group";
    private const string SandboxAnnotation = "io.kubernetes.cri.sandbox-id";
    private readonly string _pod = $"pod-{Guid.NewGuid().ToString("N")[..8]}";
    private readonly string _scratch = Directory.CreateTempSubdirectory("psh-group-").FullName;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [Fact]
    public async Task A_second_container_joins_the_pods_daemon_and_outlives_the_first()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string sandbox = _pod, member = _pod + "-app";
        string ticks = Path.Combine(_scratch, "ticks");
        try
        {
            await RunDetachedAsync(containerd, sandbox, "sleep", "300");
            int[] daemons = DaemonsOfPod(containerd);
            Assert.Single(daemons);

            await RunDetachedAsync(containerd, member, "sh", "-c", $"while :; do echo tick >> {ticks}; sleep 0.1; done");
            Assert.Equal(daemons, DaemonsOfPod(containerd)); // joined: no second daemon

            // The first container goes; the second keeps running and the daemon stays.
            await KillAndRemoveAsync(containerd, sandbox);
            long before = new FileInfo(ticks).Length;
            await Poll.UntilAsync(() => new FileInfo(ticks).Length > before + 20, "the member stopped running");
            Assert.Equal(daemons, DaemonsOfPod(containerd));

            // It is still fully served — exec works, and the daemon's log still reaches containerd.
            CommandResult exec = await containerd.CtrAsync(
                Ns, ["task", "exec", "--exec-id", "after", member, "echo", "still-served"], cancellationToken: Token);
            Assert.Equal(0, exec.ExitCode);
            Assert.Equal("still-served\n", exec.Stdout);
            await Poll.UntilAsync(
                () => File.ReadAllText(containerd.LogPath).Contains($"process {member}/after exited", StringComparison.Ordinal),
                "the daemon's log stopped reaching containerd after the first container was deleted");

            // The last one goes: so does the daemon, its socket and its lock.
            string socket = CtrRunTests.ShimSocketPath(containerd, Ns, _pod);
            Assert.True(File.Exists(socket));
            await KillAndRemoveAsync(containerd, member);
            await Poll.UntilAsync(() => DaemonsOfPod(containerd).Length == 0, "daemon still running after its last task");
            Assert.False(File.Exists(socket), "socket left behind");
            Assert.False(File.Exists(socket + ".lock"), "lock file left behind");
        }
        finally
        {
            await CleanUpAsync(containerd, sandbox, member);
        }
    }

    [Fact]
    public async Task A_killed_pod_daemon_is_cleaned_up_for_every_member()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string sandbox = _pod, member = _pod + "-app";
        try
        {
            await RunDetachedAsync(containerd, sandbox, "sleep", "301");
            await RunDetachedAsync(containerd, member, "sleep", "302");
            int[] pids = [await TaskPidAsync(containerd, sandbox), await TaskPidAsync(containerd, member)];
            int daemon = Assert.Single(DaemonsOfPod(containerd));

            Assert.Equal(0, Posix.Kill(daemon, 9));

            // containerd notices the shim is gone and runs its delete for each task.
            foreach (string id in new[] { sandbox, member })
            {
                RecordedEvent exit = await containerd.Events.WaitForAsync(
                    e => e.Namespace == Ns && e.Topic == "/tasks/exit" && e.ContainerId == id, TimeSpan.FromSeconds(30), Token);
                Assert.Equal("137", exit.Property("exit_status"));
            }

            await Poll.UntilAsync(
                () => pids.All(p => !Posix.IsAlive(p)),
                "a member's process outlived its dead shim; containerd's log says:\n" + string.Join('\n',
                    File.ReadLines(containerd.LogPath).Where(l => l.Contains(sandbox, StringComparison.Ordinal)).TakeLast(20)));
            string socket = CtrRunTests.ShimSocketPath(containerd, Ns, _pod);
            await Poll.UntilAsync(() => !File.Exists(socket), "the dead daemon's socket was left behind");
        }
        finally
        {
            await CleanUpAsync(containerd, sandbox, member);
        }
    }

    [Fact]
    public async Task Containers_of_different_pods_get_different_daemons()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string first = _pod, other = _pod + "-x";
        try
        {
            await RunDetachedAsync(containerd, first, "sleep", "300");
            (await containerd.CtrAsync(
                Ns, ["run", "-d", "--runtime", fixture.FakeShim, "--annotation", $"{SandboxAnnotation}={other}",
                     LocalContainerd.ImageReference, other, "sleep", "300"], cancellationToken: Token)).EnsureSuccess();

            Assert.Single(DaemonsOfPod(containerd));
            Assert.Single(Posix.ProcessesMatching($"-address {containerd.Address} ").Intersect(
                Posix.ProcessesMatching($"-group {other} ")));
        }
        finally
        {
            await CleanUpAsync(containerd, first, other);
        }
    }

    private async Task RunDetachedAsync(LocalContainerd containerd, string id, params string[] command) =>
        (await containerd.CtrAsync(
            Ns,
            ["run", "-d", "--runtime", fixture.FakeShim, "--annotation", $"{SandboxAnnotation}={_pod}",
             LocalContainerd.ImageReference, id, .. command],
            cancellationToken: Token)).EnsureSuccess();

    private int[] DaemonsOfPod(LocalContainerd containerd) =>
        [.. Posix.ProcessesMatching($"-address {containerd.Address} ").Intersect(Posix.ProcessesMatching($"-group {_pod} "))];

    private static async Task KillAndRemoveAsync(LocalContainerd containerd, string id)
    {
        (await containerd.CtrAsync(Ns, ["task", "kill", "--signal", "SIGKILL", id], cancellationToken: Token)).EnsureSuccess();
        await containerd.Events.WaitForAsync(
            e => e.Namespace == Ns && e.Topic == "/tasks/exit" && e.ContainerId == id && e.Property("id") == id,
            TimeSpan.FromSeconds(20), Token);
        (await containerd.CtrAsync(Ns, ["task", "rm", id], cancellationToken: Token)).EnsureSuccess();
        (await containerd.CtrAsync(Ns, ["container", "rm", id], cancellationToken: Token)).EnsureSuccess();
    }

    private static async Task<int> TaskPidAsync(LocalContainerd containerd, string id)
    {
        CommandResult list = (await containerd.CtrAsync(Ns, ["task", "ls"], cancellationToken: Token)).EnsureSuccess();
        string line = list.Stdout.Split('\n').Single(l => l.StartsWith(id + " ", StringComparison.Ordinal));
        return int.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task CleanUpAsync(LocalContainerd containerd, params string[] ids)
    {
        foreach (string id in ids)
        {
            await containerd.CtrAsync(Ns, ["task", "rm", "-f", id], cancellationToken: CancellationToken.None);
            await containerd.CtrAsync(Ns, ["container", "rm", id], cancellationToken: CancellationToken.None);
        }
    }
}
