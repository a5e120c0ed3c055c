using System.Text.Json;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;
using ShimAddress = PluggableShim.Conformance.ShimAddress;
using ShimConnection = PluggableShim.Conformance.ShimConnection;
using TaskClient = PluggableShim.Contracts.Task.Task.TaskClient;

namespace PluggableShim.EndToEnd.Tests.Support;

/// <summary>
/// The published shim launched the way containerd launches it — <c>start</c> in the bundle, with
/// containerd's address, <c>TTRPC_ADDRESS</c> and <c>GRPC_ADDRESS</c> — and then driven directly
/// over the address it printed, so that tests can make calls ctr never makes (CloseIO, bad input).
/// Events go to the real containerd.
/// </summary>
/// <remarks>
/// <paramref name="startOutput"/> is the shim config's <c>startOutput</c>: <c>address</c> (ttrpc,
/// what containerd 1.6 takes) or a bootstrap JSON form, ttrpc or gRPC, v2 or v3. For the gRPC
/// forms <c>TTRPC_ADDRESS</c> names a socket that does not exist, so events reach containerd only
/// if the daemon forwards them over gRPC (containerd 1.6 serves the gRPC Events service too).
/// </remarks>
public sealed class LaunchedShim : IAsyncDisposable
{
    private readonly ShimConnection _connection;
    private string _shim = "";
    private string _containerdAddress = "";
    private int _daemonPid;

    private LaunchedShim(string id, string ns, string bundle, ShimAddress printed, ShimConnection connection)
    {
        Id = id;
        Namespace = ns;
        Bundle = bundle;
        Printed = printed;
        _connection = connection;
        Task = new TaskClient(connection.CallInvoker);
    }

    public string Id { get; }

    public string Namespace { get; }

    public string Bundle { get; }

    /// <summary>What <c>start</c> printed.</summary>
    public ShimAddress Printed { get; }

    public TaskClient Task { get; }

    /// <summary>The daemon's ttrpc socket (the bundle's <c>address</c> file), which it serves in every mode.</summary>
    public string SocketPath => File.ReadAllText(Path.Combine(Bundle, "address"))["unix://".Length..];

    /// <summary>Writes a bundle whose init process runs <paramref name="args"/> and starts a shim for it.</summary>
    public static async Task<LaunchedShim> StartAsync(
        LocalContainerd containerd,
        string shim,
        string ns,
        string id,
        string[] args,
        CancellationToken cancellationToken,
        string startOutput = "address",
        LaunchOptions? options = null)
    {
        options ??= new LaunchOptions();
        string bundle = Directory.CreateTempSubdirectory("psh-bundle-").FullName;
        var spec = new
        {
            ociVersion = "1.0.2",
            process = new { args, env = new[] { "PATH=/usr/sbin:/usr/bin:/sbin:/bin" }, cwd = "/" },
            root = new { path = "rootfs" },
            annotations = options.Annotations ?? new Dictionary<string, string>(),
        };
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), JsonSerializer.Serialize(spec), cancellationToken);
        // Outside the bundle (a test may compare the bundle's files): one config per launch.
        string config = Path.Combine(Path.GetTempPath(), $"psh-config-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new { startOutput }), cancellationToken);

        bool grpc = startOutput.EndsWith("-grpc", StringComparison.Ordinal);
        var environment = new Dictionary<string, string>
        {
            ["TTRPC_ADDRESS"] = grpc ? containerd.TtrpcAddress + ".absent" : containerd.TtrpcAddress,
            ["GRPC_ADDRESS"] = containerd.Address,
            ["PLUGGABLESHIM_CONFIG"] = config,
        };
        foreach ((string key, string value) in options.Environment ?? new Dictionary<string, string>())
        {
            environment[key] = value;
        }

        // Outside the bundle too: stdin of start, as containerd would write it.
        string stdin = Path.Combine(Path.GetTempPath(), $"psh-stdin-{Guid.NewGuid():N}");
        await File.WriteAllBytesAsync(stdin, options.Stdin ?? [], cancellationToken);
        CommandResult started;
        try
        {
            started = await ProcessRunner.RunAsync(
                "/bin/sh",
                ["-c", $"cd '{bundle}' && exec '{shim}' -namespace {ns} -address '{containerd.Address}' " +
                       $"-publish-binary /usr/bin/containerd -id {id} start < '{stdin}'"],
                TimeSpan.FromSeconds(60),
                environment: environment,
                cancellationToken: cancellationToken);
        }
        finally
        {
            File.Delete(config); // start and the daemon have read it by now
            File.Delete(stdin);
        }

        if (options.ExpectFailure && started.ExitCode != 0)
        {
            Directory.Delete(bundle, recursive: true);
            throw new ShimStartFailedException(started);
        }

        LaunchedShim launched;
        try
        {
            started.EnsureSuccess();
            ShimAddress printed = ShimAddress.Parse(started.Stdout);
            ShimConnection connection = await printed.ConnectAsync(cancellationToken);
            launched = new LaunchedShim(id, ns, bundle, printed, connection) { _shim = shim, _containerdAddress = containerd.Address };
        }
        catch
        {
            // Nothing to drive: a daemon that did start exits once its unused place lapses (30 s).
            Directory.Delete(bundle, recursive: true);
            throw;
        }

        launched._daemonPid = await launched.DaemonPidAsync();
        if (options.ExpectFailure)
        {
            await launched.DisposeAsync(); // kills the daemon that should not be there
            throw new InvalidOperationException($"start succeeded, printing {started.Stdout}");
        }

        return launched;
    }

    /// <summary>The daemon's pid, as Connect tells it.</summary>
    public int DaemonPid => _daemonPid;

    /// <summary>A ttrpc client on the daemon's ttrpc socket, whatever start printed.</summary>
    public Task<ShimConnection> ConnectTtrpcAsync(CancellationToken cancellationToken = default) =>
        new ShimAddress("ttrpc", 2, "unix://" + SocketPath, IsJson: false).ConnectAsync(cancellationToken);

    /// <summary>The pid of the daemon serving this shim's socket.</summary>
    public async Task<int> DaemonPidAsync() =>
        (int)(await Task.ConnectAsync(new Contracts.Task.ConnectRequest { Id = Id })).ShimPid;

    /// <summary>
    /// Leaves nothing behind even when a test failed half-way: a daemon still running is killed,
    /// and the shim's own <c>delete</c> reaps its process and removes its socket.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        await _connection.DisposeAsync();
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

/// <summary>How <see cref="LaunchedShim.StartAsync"/> runs start, beyond the defaults.</summary>
public sealed record LaunchOptions
{
    /// <summary>stdin of start (a bare Any or BootstrapParams); empty by default.</summary>
    public byte[]? Stdin { get; init; }

    /// <summary>Variables set for start (and so the daemon) over the defaults; an empty value clears one.</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    /// <summary>The bundle spec's annotations.</summary>
    public IReadOnlyDictionary<string, string>? Annotations { get; init; }

    /// <summary>start is expected to fail: <see cref="ShimStartFailedException"/> carries its output, whatever the exit code.</summary>
    public bool ExpectFailure { get; init; }
}

/// <summary>start failed, as a test expected; the result says how.</summary>
public sealed class ShimStartFailedException(CommandResult result) : Exception($"start exited {result.ExitCode}: {result.Stdout}{result.Stderr}")
{
    public CommandResult Result { get; } = result;
}
