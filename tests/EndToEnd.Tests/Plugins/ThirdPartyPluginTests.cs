using PluggableShim.EndToEnd.Tests.Fake;
using PluggableShim.EndToEnd.Tests.Support;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;

namespace PluggableShim.EndToEnd.Tests.Plugins;

/// <summary>
/// A third-party plugin under containerd: the plugin <c>sample</c> that scripts/plugin-sdk.sh
/// creates from the <c>dotnet new</c> template, builds outside the solution against the packed
/// Shim.Abstractions, and copies into the published host's <c>plugins/</c>. Selected by its
/// runtime name alone (<c>io.containerd.sample.v1</c> → <c>containerd-shim-sample-v1</c>).
/// </summary>
[Collection(ContainerdCollection.Name)]
public sealed class ThirdPartyPluginTests(ContainerdFixture fixture)
{
    private const string Ns = "e2e-thirdparty";
    private const string Plugin = "sample";

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string NewId(string stem) => $"{stem}-{Guid.NewGuid().ToString("N")[..8]}";

    private async Task<LocalContainerd> RequireSampleAsync()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        if (!Directory.Exists(Path.Combine(fixture.ShimDirectory, "plugins", Plugin)))
        {
            string reason = $"no plugins/{Plugin} in {fixture.ShimDirectory}: scripts/plugin-sdk.sh installs it (scripts/test.sh runs it)";
            if (Environment.GetEnvironmentVariable(LocalContainerd.RequireVariable) is { Length: > 0 })
            {
                Assert.Fail(reason);
            }

            Assert.Skip(reason);
        }

        await ShimBuild.InstalledAsAsync(Plugin, Token);
        return containerd;
    }

    [Fact]
    public async Task The_template_plugin_runs_a_containers_task_when_selected_by_its_runtime_name()
    {
        LocalContainerd containerd = await RequireSampleAsync();
        string id = NewId("tp");

        CommandResult run = await containerd.CtrAsync(
            Ns, ["run", "--rm", "--runtime", $"io.containerd.{Plugin}.v1", LocalContainerd.ImageReference, id,
                 "sh", "-c", "echo from-sample; echo err >&2; exit 5"],
            cancellationToken: Token);

        Assert.Equal(5, run.ExitCode);
        Assert.Equal("from-sample\n", run.Stdout);
        Assert.Contains("err", run.Stderr, StringComparison.Ordinal);
        // The shim exits after replying to Shutdown, which ctr does not wait for: give it the moment.
        await Poll.UntilAsync(() => Posix.ProcessesMatching($"-id {id} ").Count == 0, "shim process still running");
        Assert.False(File.Exists(CtrRunTests.ShimSocketPath(containerd, Ns, id)), "socket left behind");
    }

    [Fact]
    public async Task Exec_works_and_an_operation_it_does_not_declare_fails_with_unimplemented()
    {
        LocalContainerd containerd = await RequireSampleAsync();
        string id = NewId("tpd");
        (await containerd.CtrAsync(Ns, ["run", "-d", "--runtime", $"io.containerd.{Plugin}.v1", LocalContainerd.ImageReference, id, "sleep", "86398"],
            cancellationToken: Token)).EnsureSuccess();
        try
        {
            CommandResult exec = await containerd.CtrAsync(
                Ns, ["task", "exec", "--exec-id", "probe", id, "sh", "-c", "echo from-exec; exit 4"], cancellationToken: Token);
            Assert.Equal(4, exec.ExitCode);
            Assert.Equal("from-exec\n", exec.Stdout);

            CommandResult pause = await containerd.CtrAsync(Ns, ["task", "pause", id], cancellationToken: Token);
            Assert.NotEqual(0, pause.ExitCode);
            Assert.Contains("not implemented", pause.Stderr, StringComparison.OrdinalIgnoreCase);

            (await containerd.CtrAsync(Ns, ["task", "kill", "--signal", "SIGKILL", id], cancellationToken: Token)).EnsureSuccess();
            await containerd.Events.WaitForAsync(
                e => e.Namespace == Ns && e.Topic == "/tasks/exit" && e.ContainerId == id && e.Property("id") == id,
                TimeSpan.FromSeconds(20), Token);
            (await containerd.CtrAsync(Ns, ["task", "rm", id], cancellationToken: Token)).EnsureSuccess();
        }
        finally
        {
            await containerd.CtrAsync(Ns, ["task", "rm", "-f", id], cancellationToken: CancellationToken.None);
            await containerd.CtrAsync(Ns, ["container", "rm", id], cancellationToken: CancellationToken.None);
        }
    }
}
