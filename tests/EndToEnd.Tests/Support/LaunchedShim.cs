using System.Text.Json;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;
using PluggableShim.Ttrpc;
using TaskClient = PluggableShim.Contracts.Task.Task.TaskClient;

namespace PluggableShim.EndToEnd.Tests.Support;

/// <summary>
/// The published shim launched the way containerd launches it — <c>start</c> in the bundle, with
/// containerd's address and <c>TTRPC_ADDRESS</c> — and then driven directly over the socket it
/// printed, so that tests can make calls ctr never makes (CloseIO, bad input). Events go to the
/// real containerd.
/// </summary>
public sealed class LaunchedShim : IAsyncDisposable
{
    private readonly TtrpcClient _client;
    private string _shim = "";
    private string _containerdAddress = "";
    private int _daemonPid;

    private LaunchedShim(string id, string ns, string bundle, string address, TtrpcClient client)
    {
        Id = id;
        Namespace = ns;
        Bundle = bundle;
        Address = address;
        _client = client;
        Task = new TaskClient(client);
    }

    public string Id { get; }

    public string Namespace { get; }

    public string Bundle { get; }

    /// <summary>What <c>start</c> printed.</summary>
    public string Address { get; }

    public TaskClient Task { get; }

    public string SocketPath => Address["unix://".Length..];

    /// <summary>Writes a bundle whose init process runs <paramref name="args"/> and starts a shim for it.</summary>
    public static async Task<LaunchedShim> StartAsync(
        LocalContainerd containerd, string shim, string ns, string id, string[] args, CancellationToken cancellationToken)
    {
        string bundle = Directory.CreateTempSubdirectory("psh-bundle-").FullName;
        var spec = new
        {
            ociVersion = "1.0.2",
            process = new { args, env = new[] { "PATH=/usr/sbin:/usr/bin:/sbin:/bin" }, cwd = "/" },
            root = new { path = "rootfs" },
            annotations = new Dictionary<string, string>(),
        };
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), JsonSerializer.Serialize(spec), cancellationToken);

        CommandResult started = await ProcessRunner.RunAsync(
            "/bin/sh",
            ["-c", $"cd '{bundle}' && exec '{shim}' -namespace {ns} -address '{containerd.Address}' " +
                   $"-publish-binary /usr/bin/containerd -id {id} start"],
            TimeSpan.FromSeconds(60),
            environment: new Dictionary<string, string> { ["TTRPC_ADDRESS"] = containerd.TtrpcAddress },
            cancellationToken: cancellationToken);
        started.EnsureSuccess();
        TtrpcClient client = await TtrpcClient.ConnectAsync(started.Stdout, cancellationToken: cancellationToken);
        var launched = new LaunchedShim(id, ns, bundle, started.Stdout, client) { _shim = shim, _containerdAddress = containerd.Address };
        launched._daemonPid = await launched.DaemonPidAsync();
        return launched;
    }

    /// <summary>The pid of the daemon serving this shim's socket.</summary>
    public async Task<int> DaemonPidAsync() =>
        (int)(await Task.ConnectAsync(new Contracts.Task.ConnectRequest { Id = Id })).ShimPid;

    /// <summary>
    /// Leaves nothing behind even when a test failed half-way: a daemon still running is killed,
    /// and the shim's own <c>delete</c> reaps its process and removes its socket.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync();
        if (_daemonPid > 0 && Posix.IsAlive(_daemonPid))
        {
            Posix.Kill(_daemonPid, 9);
            await ProcessRunner.RunAsync(
                "/bin/sh",
                ["-c", $"exec '{_shim}' -namespace {Namespace} -address '{_containerdAddress}' -id {Id} -bundle '{Bundle}' delete >/dev/null"],
                TimeSpan.FromSeconds(30));
        }

        Directory.Delete(Bundle, recursive: true);
    }
}
