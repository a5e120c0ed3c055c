using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using PluggableShim.Conformance;
using PluggableShim.Contracts.Task;
using PluggableShim.Testing;
using Task = System.Threading.Tasks.Task;

namespace PluggableShim.PluginLoading.Tests;

/// <summary>
/// Which plugin the published host loads, how plugins stay apart, and what a user sees when one
/// cannot be loaded — all through <c>start</c>, as containerd runs it. The plugins folder holds
/// real plugin folders built from tests/TestPlugins, a corrupt one, and (in a second folder) a
/// plugin whose dependency was deleted.
/// </summary>
public sealed class PluginLoadingTests : IAsyncLifetime
{
    private const string Ns = "plugin-loading";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private readonly string _work = Directory.CreateTempSubdirectory("psh-load-").FullName;
    private readonly List<(string Id, string Bundle, int Daemon)> _started = [];
    private string _host = "";

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private string Plugins => Path.Combine(_work, "plugins");

    private string Config => Path.Combine(_work, "pluggableshim.json");

    /// <summary>A config whose plugins folder has jsontwelve without its Newtonsoft.Json.dll.</summary>
    private string BrokenConfig => Path.Combine(_work, "broken.json");

    private string Address => Path.Combine(_work, "containerd.sock");

    public async ValueTask InitializeAsync()
    {
        if (ConformanceInstallation.Unavailable() is not null)
        {
            return;
        }

        _host = await ShimBuild.DirectoryAsync(Token);
        string built = Path.Combine(AppContext.BaseDirectory, "test-plugins");
        foreach (string plugin in new[] { "jsontwelve", "jsonthirteen", "throwing" })
        {
            Copy(Path.Combine(built, plugin), Path.Combine(Plugins, plugin));
        }

        // A folder that looks like a plugin and is garbage.
        Directory.CreateDirectory(Path.Combine(Plugins, "corrupt"));
        await File.WriteAllBytesAsync(Path.Combine(Plugins, "corrupt", "corrupt.dll"), RandomNumberGenerator.GetBytes(4096), Token);

        string broken = Path.Combine(_work, "broken-plugins", "jsontwelve");
        Copy(Path.Combine(built, "jsontwelve"), broken);
        File.Delete(Path.Combine(broken, "Newtonsoft.Json.dll"));

        await File.WriteAllTextAsync(Config, JsonSerializer.Serialize(new { pluginsDirectory = Plugins }), Token);
        await File.WriteAllTextAsync(BrokenConfig, JsonSerializer.Serialize(new { pluginsDirectory = Path.GetDirectoryName(broken) }), Token);
        Directory.CreateDirectory(Path.Combine(_work, "bin"));
    }

    public async ValueTask DisposeAsync()
    {
        foreach ((string id, string bundle, int daemon) in _started)
        {
            if (LaunchedShim.IsAlive(daemon))
            {
                Process.GetProcessById(daemon).Kill();
                await ShimCommand.RunAsync(ShimNamed("pluggable"), ["-namespace", Ns, "-address", Address, "-id", id, "-bundle", bundle, "delete"],
                    bundle, new Dictionary<string, string>(), TimeSpan.FromSeconds(30));
            }
        }

        Directory.Delete(_work, recursive: true);
    }

    [Fact]
    public async Task Two_plugins_on_two_versions_of_one_library_each_see_their_own_and_load_nothing_else()
    {
        RequireHost();
        await using RecordingEvents events = RecordingEvents.Listen(Path.Combine(_work, "events.sock"));

        // Both daemons run at once, each with its plugin's own Newtonsoft.Json.
        Task<string> twelve = RunTaskAsync("jsontwelve", events);
        Task<string> thirteen = RunTaskAsync("jsonthirteen", events);

        Assert.Equal("""newtonsoft 12.0.3 {"plugin":"jsontwelve"}""" + "\n", await twelve);
        Assert.Equal("""newtonsoft 13.0.4 {"plugin":"jsonthirteen"}""" + "\n", await thirteen);
    }

    public static TheoryData<string, bool, string[]> Failures => new()
    {
        { "nosuch", false, ["plugin nosuch: not installed: no folder"] },
        { "corrupt", false, ["plugin corrupt: failed to load", "BadImageFormatException"] },
        { "throwing", false, ["plugin throwing: threw while registering its services", "registration refused on purpose"] },
        { "jsontwelve", true, ["plugin jsontwelve: lacks a dependency: Newtonsoft.Json 12.0.0.0 is not in", "broken-plugins/jsontwelve"] },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public async Task A_plugin_that_cannot_load_fails_start_with_one_line_naming_it_and_the_cause_leaving_nothing(
        string plugin, bool brokenFolder, string[] expected)
    {
        RequireHost();
        string id = NewId("fail");
        string bundle = await BundleAsync(id, new Dictionary<string, string>());
        var watch = Stopwatch.StartNew();

        ShimCommandResult start = await RunStartAsync(ShimNamed(plugin), id, bundle, brokenFolder ? BrokenConfig : Config);

        watch.Stop();
        string output = start.Output.Trim();
        Assert.NotEqual(0, start.ExitCode);
        Assert.DoesNotContain('\n', output);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        foreach (string fragment in expected)
        {
            Assert.Contains(fragment, output, StringComparison.Ordinal);
        }

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(15), $"start took {watch.Elapsed.TotalSeconds:0.0} s to fail");
        Assert.Empty(Posix.ProcessesMatching($"-id {id} "));
        string socket = SocketPath(id);
        Assert.False(File.Exists(socket), "socket left behind");
        Assert.False(File.Exists(socket + ".lock"), "group lock left behind");
        Assert.False(File.Exists(Path.Combine(bundle, "address")), "address file written for a shim that does not run");
    }

    [Fact]
    public async Task A_container_joining_its_pods_daemon_with_a_plugin_other_than_the_daemons_fails_start_with_one_line()
    {
        RequireHost();
        string pod = NewId("pod");
        await using RecordingEvents events = RecordingEvents.Listen(Path.Combine(_work, "pod-events.sock"));
        string first = NewId("first");
        string firstBundle = await BundleAsync(first, new Dictionary<string, string>
        {
            ["io.kubernetes.cri.sandbox-id"] = pod,
            ["io.pluggableshim.plugin"] = "jsontwelve",
        });
        ShimCommandResult started = await RunStartAsync(ShimNamed("pluggable"), first, firstBundle, Config, events.SocketPath);
        Assert.True(started.ExitCode == 0, started.Output);
        await using ShimConnection connection = await ShimConnection.ConnectAsync(started.Output, Token);
        int daemon = (int)(await connection.Task.ConnectAsync(new ConnectRequest { Id = first }, cancellationToken: Token)).ShimPid;
        _started.Add((first, firstBundle, daemon));

        string second = NewId("second");
        string secondBundle = await BundleAsync(second, new Dictionary<string, string>
        {
            ["io.kubernetes.cri.sandbox-id"] = pod,
            ["io.pluggableshim.plugin"] = "throwing",
        });
        ShimCommandResult joined = await RunStartAsync(ShimNamed("pluggable"), second, secondBundle, Config, events.SocketPath);

        string output = joined.Output.Trim();
        Assert.NotEqual(0, joined.ExitCode);
        Assert.DoesNotContain('\n', output);
        Assert.Contains("selects plugin throwing", output, StringComparison.Ordinal);
        Assert.Contains("runs plugin jsontwelve", output, StringComparison.Ordinal);
        // The pod's daemon is unharmed and still serves its container.
        await connection.Task.CreateAsync(new CreateTaskRequest { Id = first, Bundle = firstBundle }, cancellationToken: Token);
        await connection.Task.StartAsync(new StartRequest { Id = first }, cancellationToken: Token);
        Assert.Equal(0u, (await connection.Task.WaitAsync(new WaitRequest { Id = first }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token)).ExitStatus);
        await connection.Task.DeleteAsync(new DeleteRequest { Id = first }, cancellationToken: Token);
        await connection.Task.ShutdownAsync(new ShutdownRequest { Id = first }, cancellationToken: Token);
        await Poll(() => !LaunchedShim.IsAlive(daemon) && !File.Exists(SocketPath(pod)), "the pod's daemon did not exit after its last task");
    }

    private static void RequireHost()
    {
        if (ConformanceInstallation.Unavailable() is { } reason)
        {
            Assert.Skip(reason);
        }
    }

    private static string NewId(string stem) => $"{stem}-{Guid.NewGuid():N}"[..(stem.Length + 9)];

    /// <summary>Starts a shim for <paramref name="plugin"/> (by its binary name), runs one task, returns its stdout; leaves nothing.</summary>
    private async Task<string> RunTaskAsync(string plugin, RecordingEvents events)
    {
        string id = NewId(plugin);
        string bundle = await BundleAsync(id, new Dictionary<string, string>());
        ShimCommandResult started = await RunStartAsync(ShimNamed(plugin), id, bundle, Config, events.SocketPath);
        Assert.True(started.ExitCode == 0, $"start {plugin}: {started.Output}");
        await using ShimConnection connection = await ShimConnection.ConnectAsync(started.Output, Token);
        int daemon = (int)(await connection.Task.ConnectAsync(new ConnectRequest { Id = id }, cancellationToken: Token)).ShimPid;
        _started.Add((id, bundle, daemon));

        // Loaded only when selected: the daemon maps its own plugin's assembly and no other plugin's.
        string maps = await File.ReadAllTextAsync($"/proc/{daemon}/maps", Token);
        Assert.Contains($"/plugins/{plugin}/{plugin}.dll", maps, StringComparison.Ordinal);
        foreach (string other in new[] { "jsontwelve", "jsonthirteen", "throwing", "corrupt" }.Where(o => o != plugin))
        {
            Assert.DoesNotContain($"/plugins/{other}/", maps, StringComparison.Ordinal);
        }

        using var io = new ClientIo(_work);
        await connection.Task.CreateAsync(new CreateTaskRequest { Id = id, Bundle = bundle, Stdout = io.Stdout }, cancellationToken: Token);
        await connection.Task.StartAsync(new StartRequest { Id = id }, cancellationToken: Token);
        await connection.Task.WaitAsync(new WaitRequest { Id = id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        await io.WaitForOutputAsync("\n", Bound);
        await connection.Task.DeleteAsync(new DeleteRequest { Id = id }, cancellationToken: Token);
        await connection.Task.ShutdownAsync(new ShutdownRequest { Id = id }, cancellationToken: Token);
        await Poll(() => !LaunchedShim.IsAlive(daemon), $"the {plugin} daemon did not exit");
        return io.Output;
    }

    private Task<ShimCommandResult> RunStartAsync(string shim, string id, string bundle, string config, string? ttrpc = null) =>
        ShimCommand.RunAsync(
            shim,
            ["-namespace", Ns, "-address", Address, "-publish-binary", "/usr/bin/containerd", "-id", id, "start"],
            bundle,
            new Dictionary<string, string>
            {
                ["PLUGGABLESHIM_CONFIG"] = config,
                ["TTRPC_ADDRESS"] = ttrpc ?? Path.Combine(_work, "no-events.sock"),
            },
            TimeSpan.FromSeconds(60),
            Token);

    /// <summary>The host's launcher installed as <c>containerd-shim-NAME-v1</c>.</summary>
    private string ShimNamed(string plugin)
    {
        string link = Path.Combine(_work, "bin", $"containerd-shim-{plugin}-v1");
        if (!File.Exists(link))
        {
            File.CreateSymbolicLink(link, Path.Combine(_host, ShimBuild.HostBinary));
        }

        return link;
    }

    private async Task<string> BundleAsync(string id, Dictionary<string, string> annotations)
    {
        string bundle = Directory.CreateDirectory(Path.Combine(_work, "bundles", id)).FullName;
        var spec = new { ociVersion = "1.0.2", process = new { args = new[] { "true" }, cwd = "/" }, root = new { path = "rootfs" }, annotations };
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), JsonSerializer.Serialize(spec), Token);
        return bundle;
    }

    private string SocketPath(string group) =>
        "/run/containerd/s/" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{Address}/{Ns}/{group}")));

    private static async Task Poll(Func<bool> condition, string failure)
    {
        DateTime deadline = DateTime.UtcNow + Bound;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(20, Token);
        }
    }

    private static void Copy(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }
    }
}
