using PluggableShim.EndToEnd.Tests.Support;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;

namespace PluggableShim.EndToEnd.Tests.Fake;

/// <summary>
/// What a user sees driving containerd with <c>ctr</c> through our shim and the Fake plugin.
/// </summary>
[Collection(ContainerdCollection.Name)]
public sealed class CtrRunTests(ContainerdFixture fixture)
{
    private const string Ns = "e2e-run";
    private static readonly string s_image = LocalContainerd.ImageReference;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string NewId(string stem) => $"{stem}-{Guid.NewGuid().ToString("N")[..8]}";

    [Fact]
    public async Task Run_rm_prints_the_process_output()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("echo");

        CommandResult run = await containerd.CtrAsync(
            Ns, ["run", "--rm", "--runtime", fixture.FakeShim, s_image, id, "echo", "hi"], cancellationToken: Token);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("hi\n", run.Stdout);
    }

    [Fact]
    public async Task Runtime_name_resolves_to_the_installed_binary_on_containerds_path()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("byname");

        CommandResult run = await containerd.CtrAsync(
            Ns, ["run", "--rm", "--runtime", "io.containerd.fake.v1", s_image, id, "sh", "-c", "echo $0", "named"],
            cancellationToken: Token);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("named\n", run.Stdout);
    }

    [Fact]
    public async Task Exit_code_of_the_process_is_the_exit_code_of_ctr_run()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);

        CommandResult run = await containerd.CtrAsync(
            Ns, ["run", "--rm", "--runtime", fixture.FakeShim, s_image, NewId("exit"), "sh", "-c", "echo out; echo err >&2; exit 7"],
            cancellationToken: Token);

        Assert.Equal(7, run.ExitCode);
        Assert.Equal("out\n", run.Stdout);
        Assert.Contains("err", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stdin_piped_into_run_reaches_the_process()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);

        // head -c 4 stops by itself: ctr 1.6 does not close a task's stdin at its own EOF.
        CommandResult run = await containerd.CtrAsync(
            Ns, ["run", "--rm", "--runtime", fixture.FakeShim, s_image, NewId("stdin"), "head", "-c", "4"],
            stdin: "abcdefgh", cancellationToken: Token);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("abcd", run.Stdout);
    }

    [Fact]
    public async Task Detached_task_supports_exec_ps_pause_resume_kill_and_rm()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("detached");
        (await containerd.CtrAsync(Ns, ["run", "-d", "--runtime", fixture.FakeShim, s_image, id, "sleep", "300"],
            cancellationToken: Token)).EnsureSuccess();
        try
        {
            CommandResult exec = await containerd.CtrAsync(
                Ns, ["task", "exec", "--exec-id", "probe", id, "sh", "-c", "echo from-exec; exit 4"], cancellationToken: Token);
            Assert.Equal(4, exec.ExitCode);
            Assert.Equal("from-exec\n", exec.Stdout);

            int initPid = await TaskPidAsync(containerd, id);
            CommandResult ps = (await containerd.CtrAsync(Ns, ["task", "ps", id], cancellationToken: Token)).EnsureSuccess();
            Assert.Contains(initPid.ToString(System.Globalization.CultureInfo.InvariantCulture), ps.Stdout, StringComparison.Ordinal);

            (await containerd.CtrAsync(Ns, ["task", "pause", id], cancellationToken: Token)).EnsureSuccess();
            Assert.Equal("PAUSED", await TaskStatusAsync(containerd, id));
            Assert.Equal('T', ProcessStateLetter(initPid));
            (await containerd.CtrAsync(Ns, ["task", "resume", id], cancellationToken: Token)).EnsureSuccess();
            Assert.Equal("RUNNING", await TaskStatusAsync(containerd, id));
            Assert.NotEqual('T', ProcessStateLetter(initPid));

            (await containerd.CtrAsync(Ns, ["task", "kill", "--signal", "SIGKILL", id], cancellationToken: Token)).EnsureSuccess();
            RecordedEvent exit = await containerd.Events.WaitForAsync(
                e => e.Namespace == Ns && e.Topic == "/tasks/exit" && e.ContainerId == id && e.Property("id") == id,
                TimeSpan.FromSeconds(20), Token);
            Assert.Equal("137", exit.Property("exit_status"));
            Assert.Equal("STOPPED", await TaskStatusAsync(containerd, id));
            Assert.False(Posix.IsAlive(initPid));

            (await containerd.CtrAsync(Ns, ["task", "rm", id], cancellationToken: Token)).EnsureSuccess();
            CommandResult tasks = (await containerd.CtrAsync(Ns, ["task", "ls"], cancellationToken: Token)).EnsureSuccess();
            Assert.DoesNotContain(id, tasks.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            await RemoveQuietlyAsync(containerd, id);
        }
    }

    [Fact]
    public async Task Events_reach_containerd_in_contract_order_with_the_exec_exit_before_the_init_exit()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("events");
        (await containerd.CtrAsync(Ns, ["run", "-d", "--runtime", fixture.FakeShim, s_image, id, "sleep", "300"],
            cancellationToken: Token)).EnsureSuccess();
        (await containerd.CtrAsync(Ns, ["task", "exec", "-d", "--exec-id", "long", id, "sleep", "300"],
            cancellationToken: Token)).EnsureSuccess();
        (await containerd.CtrAsync(Ns, ["task", "kill", "--all", "--signal", "SIGTERM", id], cancellationToken: Token)).EnsureSuccess();
        await containerd.Events.WaitForAsync(
            e => e.Namespace == Ns && e.Topic == "/tasks/exit" && e.ContainerId == id && e.Property("id") == id,
            TimeSpan.FromSeconds(20), Token);
        (await containerd.CtrAsync(Ns, ["task", "rm", id], cancellationToken: Token)).EnsureSuccess();
        (await containerd.CtrAsync(Ns, ["container", "rm", id], cancellationToken: Token)).EnsureSuccess();
        await containerd.Events.WaitForAsync(
            e => e.Namespace == Ns && e.Topic == "/containers/delete" && e.ContainerId == id, TimeSpan.FromSeconds(20), Token);

        string[] seen = [.. containerd.Events.For(Ns, id)
            .Where(e => e.Topic.StartsWith("/tasks/", StringComparison.Ordinal))
            .Select(e => e.Topic == "/tasks/exit" ? $"/tasks/exit {e.Property("id")}" : e.Topic)];

        Assert.Equal(
            ["/tasks/create", "/tasks/start", "/tasks/exec-added", "/tasks/exec-started", "/tasks/exit long",
             $"/tasks/exit {id}", "/tasks/delete"],
            seen);
        RecordedEvent exited = containerd.Events.For(Ns, id).Single(e => e.Topic == "/tasks/exit" && e.Property("id") == id);
        Assert.Equal("143", exited.Property("exit_status"));
    }

    [Fact]
    public async Task Killing_the_init_ends_what_it_started_and_its_exit_comes_at_once()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("pidns");
        string mark = await RunFamilyAsync(containerd, id);
        try
        {

            var watch = System.Diagnostics.Stopwatch.StartNew();
            (await containerd.CtrAsync(Ns, ["task", "kill", "--signal", "SIGKILL", id], cancellationToken: Token)).EnsureSuccess();
            await containerd.Events.WaitForAsync(
                e => e.Namespace == Ns && e.Topic == "/tasks/exit" && e.ContainerId == id && e.Property("id") == id,
                TimeSpan.FromSeconds(20), Token);

            // As in a PID namespace: the init's death takes the rest with it, and nothing holds the
            // output open, so the exit is not held back by the 5 s drain bound.
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(4), $"exit reported after {watch.Elapsed.TotalSeconds:0.0} s");
            await Poll.UntilAsync(() => Posix.ProcessesMatching(mark).Count == 0, "a process of the container outlived its init");
        }
        finally
        {
            await RemoveQuietlyAsync(containerd, id);
        }
    }

    [Fact]
    public async Task After_the_daemon_is_killed_delete_ends_every_process_of_the_container()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("orphans");
        string mark = await RunFamilyAsync(containerd, id);
        try
        {
            int daemon = Assert.Single(Posix.ProcessesMatching($"-id {id} ").Intersect(Posix.ProcessesMatching(" daemon")));

            Assert.Equal(0, Posix.Kill(daemon, 9));

            await containerd.Events.WaitForAsync(
                e => e.Namespace == Ns && e.Topic == "/tasks/exit" && e.ContainerId == id, TimeSpan.FromSeconds(30), Token);
            await Poll.UntilAsync(() => Posix.ProcessesMatching(mark).Count == 0, "a process outlived its dead shim");
        }
        finally
        {
            await RemoveQuietlyAsync(containerd, id);
        }
    }

    [Fact]
    public async Task Nothing_is_left_behind_after_run_rm()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("leaks");

        (await containerd.CtrAsync(Ns, ["run", "--rm", "--runtime", fixture.FakeShim, s_image, id, "sh", "-c", "sleep 0.2; echo done"],
            cancellationToken: Token)).EnsureSuccess();

        // The shim exits after replying to Shutdown; give it the moment it needs to flush and go.
        string shimSocket = ShimSocketPath(containerd, Ns, id);
        await Poll.UntilAsync(() => Posix.ProcessesMatching($"-id {id} ").Count == 0, "shim process still running");
        Assert.False(File.Exists(shimSocket), $"shim socket {shimSocket} left behind");
        Assert.False(Directory.Exists(containerd.BundleOf(Ns, id)), "bundle left behind");
        Assert.Empty(Directory.Exists("/run/containerd/fifo")
            ? Directory.EnumerateFiles("/run/containerd/fifo", id + "-*", SearchOption.AllDirectories)
            : []);
    }

    /// <summary>
    /// Runs a detached task whose init has a background child and a double-forked one (re-parented
    /// away from its tree); returns what their command lines share.
    /// </summary>
    private async Task<string> RunFamilyAsync(LocalContainerd containerd, string id)
    {
        int stem = Random.Shared.Next(5000, 7000); // the processes sleep STEM1, STEM2 and STEM3 seconds
        (await containerd.CtrAsync(
            Ns, ["run", "-d", "--runtime", fixture.FakeShim, s_image, id, "sh", "-c", $"sleep {stem}1 & (sleep {stem}2 &); sleep {stem}3"],
            cancellationToken: Token)).EnsureSuccess();
        string mark = $"sleep {stem}";
        await Poll.UntilAsync(() => Posix.ProcessesMatching(mark).Count >= 3, "the container's processes did not start");
        return mark;
    }

    private static async Task RemoveQuietlyAsync(LocalContainerd containerd, string id)
    {
        await containerd.CtrAsync(Ns, ["task", "rm", "-f", id], cancellationToken: CancellationToken.None);
        await containerd.CtrAsync(Ns, ["container", "rm", id], cancellationToken: CancellationToken.None);
    }

    internal static string ShimSocketPath(LocalContainerd containerd, string ns, string id)
    {
        byte[] hash = System.Security.Cryptography.SHA256.HashData(
            System.Text.Encoding.UTF8.GetBytes($"{containerd.Address}/{ns}/{id}"));
        return "/run/containerd/s/" + Convert.ToHexStringLower(hash);
    }

    private static async Task<int> TaskPidAsync(LocalContainerd containerd, string id)
    {
        string[] row = await TaskRowAsync(containerd, id);
        return int.Parse(row[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<string> TaskStatusAsync(LocalContainerd containerd, string id) => (await TaskRowAsync(containerd, id))[2];

    // `ctr task ls` prints: TASK PID STATUS
    private static async Task<string[]> TaskRowAsync(LocalContainerd containerd, string id)
    {
        CommandResult list = (await containerd.CtrAsync(Ns, ["task", "ls"], cancellationToken: Token)).EnsureSuccess();
        string line = list.Stdout.Split('\n').Single(l => l.StartsWith(id + " ", StringComparison.Ordinal));
        return line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }

    private static char ProcessStateLetter(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[stat.LastIndexOf(')') + 2];
    }
}
