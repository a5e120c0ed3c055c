using PluggableShim.EndToEnd.Tests.Support;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;

namespace PluggableShim.EndToEnd.Tests.Fake;

/// <summary>How the generic <c>containerd-shim-pluggable-v1</c> picks its plugin, driven through ctr.</summary>
[Collection(ContainerdCollection.Name)]
public sealed class SelectionTests(ContainerdFixture fixture) : IDisposable
{
    private const string Ns = "e2e-select";
    private readonly string _directory = Directory.CreateTempSubdirectory("psh-select-").FullName;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private string Generic => Path.Combine(fixture.ShimDirectory, ShimBuild.HostBinary);

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Runtime_config_path_names_a_config_that_selects_the_plugin()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string config = Path.Combine(_directory, "fake.json");
        await File.WriteAllTextAsync(config, """{ "plugin": "fake" }""", Token);

        CommandResult run = await containerd.CtrAsync(
            Ns,
            ["run", "--rm", "--runtime", Generic, "--runtime-config-path", config, LocalContainerd.ImageReference,
             $"cfg-{Guid.NewGuid():N}"[..12], "echo", "by-config"],
            cancellationToken: Token);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("by-config\n", run.Stdout);
    }

    [Fact]
    public async Task Annotation_selects_the_plugin_when_nothing_else_does()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);

        CommandResult run = await containerd.CtrAsync(
            Ns,
            ["run", "--rm", "--runtime", Generic, "--annotation", "io.pluggableshim.plugin=fake",
             LocalContainerd.ImageReference, $"ann-{Guid.NewGuid():N}"[..12], "echo", "by-annotation"],
            cancellationToken: Token);

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("by-annotation\n", run.Stdout);
    }

    [Fact]
    public async Task An_unknown_plugin_fails_run_with_one_line_naming_it_and_leaves_no_shim()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = $"nope-{Guid.NewGuid():N}"[..13];

        CommandResult run = await containerd.CtrAsync(
            Ns,
            ["run", "--rm", "--runtime", Generic, "--annotation", "io.pluggableshim.plugin=nosuchplugin",
             LocalContainerd.ImageReference, id, "true"],
            cancellationToken: Token);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("nosuchplugin", run.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.Stderr, StringComparison.Ordinal); // no stack trace
        // containerd runs the shim's delete after a failed start; nothing may stay once it is done.
        await Poll.UntilAsync(() => Posix.ProcessesMatching($"-id {id} ").Count == 0, "a shim process was left behind");
        string socket = CtrRunTests.ShimSocketPath(containerd, Ns, id);
        Assert.False(File.Exists(socket), "socket left behind");
        Assert.False(File.Exists(socket + ".lock"), "group lock left behind");
        await containerd.CtrAsync(Ns, ["container", "rm", id], cancellationToken: CancellationToken.None);
    }

    [Fact]
    public async Task A_runtime_config_path_that_does_not_exist_fails_run_naming_it()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = $"nocfg-{Guid.NewGuid():N}"[..14];
        string missing = Path.Combine(_directory, "missing.json");

        CommandResult run = await containerd.CtrAsync(
            Ns,
            ["run", "--rm", "--runtime", Generic, "--runtime-config-path", missing, "--annotation", "io.pluggableshim.plugin=fake",
             LocalContainerd.ImageReference, id, "true"],
            cancellationToken: Token);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains(missing, run.Stderr, StringComparison.Ordinal);
        Assert.Contains("does not exist", run.Stderr, StringComparison.Ordinal);
        await containerd.CtrAsync(Ns, ["container", "rm", id], cancellationToken: CancellationToken.None);
    }

    [Fact]
    public async Task No_selection_at_all_fails_run_with_the_ways_to_select_one()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = $"none-{Guid.NewGuid():N}"[..13];

        CommandResult run = await containerd.CtrAsync(
            Ns, ["run", "--rm", "--runtime", Generic, LocalContainerd.ImageReference, id, "true"], cancellationToken: Token);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains("no plugin selected", run.Stderr, StringComparison.Ordinal);
        await containerd.CtrAsync(Ns, ["container", "rm", id], cancellationToken: CancellationToken.None);
    }
}
