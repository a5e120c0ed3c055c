using System.Runtime.InteropServices;
using System.Text;
using PluggableShim.Contracts.Task;
using Task = System.Threading.Tasks.Task;
using TaskClient = PluggableShim.Contracts.Task.Task.TaskClient;

namespace PluggableShim.Conformance;

/// <summary>
/// One container's shim, launched as containerd launches it: <c>SHIM -namespace NS -address ADDR
/// -publish-binary containerd -id ID start</c> in the bundle, with <c>TTRPC_ADDRESS</c> naming a
/// <see cref="RecordingEvents"/> server, then reached only through the address <c>start</c> printed
/// (<see cref="ShimConnection"/>). The bundle's <c>log</c> FIFO is read, so failures can show the shim's log.
/// </summary>
public sealed partial class LaunchedShim : IAsyncDisposable
{
    /// <summary>The containerd namespace the kit uses.</summary>
    public const string Namespace = "conformance";

    private readonly ConformanceInstallation _installation;
    private readonly bool _ownsEvents;
    private readonly FileStream _logFifo;
    private readonly StringBuilder _log = new();

    private LaunchedShim(
        ConformanceInstallation installation,
        string id,
        string bundle,
        RecordingEvents events,
        bool ownsEvents,
        FileStream logFifo,
        ShimConnection connection)
    {
        _installation = installation;
        Id = id;
        Bundle = bundle;
        Events = events;
        _ownsEvents = ownsEvents;
        _logFifo = logFifo;
        Connection = connection;
        ClientIo.Collect(logFifo, _log);
    }

    /// <summary>The container id.</summary>
    public string Id { get; }

    /// <summary>The bundle folder (<c>start</c>'s working directory).</summary>
    public string Bundle { get; }

    /// <summary>The connection to the address <c>start</c> printed.</summary>
    public ShimConnection Connection { get; }

    /// <summary>The Task API client.</summary>
    public TaskClient Task => Connection.Task;

    /// <summary>The events the shim published (shared by the containers of one pod).</summary>
    public RecordingEvents Events { get; }

    /// <summary>The daemon's pid, from Connect.</summary>
    public int DaemonPid { get; private set; }

    /// <summary>The shim's own log lines written to this bundle's <c>log</c> FIFO.</summary>
    public string ShimLog
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>The containerd address given to <c>start</c> (the kit runs no containerd; only the socket name derives from it).</summary>
    public static string ContainerdAddress(ConformanceInstallation installation)
    {
        ArgumentNullException.ThrowIfNull(installation);
        return Path.Combine(installation.WorkDirectory, "containerd.sock");
    }

    /// <summary>
    /// Writes a bundle whose init process does <paramref name="behavior"/>, runs <c>start</c> for it
    /// and connects. With <paramref name="joinEvents"/> (a pod's earlier container) the same events server is used.
    /// </summary>
    public static async Task<LaunchedShim> StartAsync(
        ConformanceInstallation installation,
        string id,
        ProcessBehavior behavior,
        IReadOnlyDictionary<string, string>? annotations = null,
        RecordingEvents? joinEvents = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(installation);
        string bundle = await WriteBundleAsync(installation, id, behavior, annotations, cancellationToken).ConfigureAwait(false);
        string logPath = Path.Combine(bundle, "log");
        ClientIo.MakeFifo(logPath);
        FileStream logFifo = ClientIo.Open(logPath); // read-write, as containerd opens it
        RecordingEvents events = joinEvents ?? RecordingEvents.Listen(Path.Combine(installation.WorkDirectory, $"ev-{id}.sock"));
        try
        {
            ShimCommandResult started = await RunStartAsync(installation, id, bundle, events.SocketPath, cancellationToken).ConfigureAwait(false);
            if (started.ExitCode != 0)
            {
                throw new Xunit.Sdk.XunitException($"start failed ({started.ExitCode}): {started.Output}");
            }

            ShimConnection connection = await ShimConnection.ConnectAsync(started.Output, cancellationToken).ConfigureAwait(false);
            var shim = new LaunchedShim(installation, id, bundle, events, joinEvents is null, logFifo, connection);
            ConnectResponse connected = await shim.Task.ConnectAsync(new ConnectRequest { Id = id }, cancellationToken: cancellationToken);
            shim.DaemonPid = (int)connected.ShimPid;
            return shim;
        }
        catch
        {
            await logFifo.DisposeAsync().ConfigureAwait(false);
            if (joinEvents is null)
            {
                await events.DisposeAsync().ConfigureAwait(false);
            }

            Directory.Delete(bundle, recursive: true);
            throw;
        }
    }

    /// <summary>Writes the bundle for <paramref name="id"/> through the target.</summary>
    public static async Task<string> WriteBundleAsync(
        ConformanceInstallation installation,
        string id,
        ProcessBehavior behavior,
        IReadOnlyDictionary<string, string>? annotations = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(installation);
        string bundle = Directory.CreateDirectory(Path.Combine(installation.WorkDirectory, "bundles", id)).FullName;
        await installation.Target.WriteBundleAsync(
            bundle, installation.Target.ProcessSpec(behavior), annotations ?? new Dictionary<string, string>(), cancellationToken)
            .ConfigureAwait(false);
        return bundle;
    }

    /// <summary>Runs <c>start</c> only, as containerd does, and returns what it printed.</summary>
    public static Task<ShimCommandResult> RunStartAsync(
        ConformanceInstallation installation,
        string id,
        string bundle,
        string ttrpcAddress,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(installation);
        var environment = new Dictionary<string, string>(installation.Target.StartEnvironment)
        {
            ["TTRPC_ADDRESS"] = ttrpcAddress,
            ["PLUGGABLESHIM_CONFIG"] = installation.ConfigPath,
        };
        return ShimCommand.RunAsync(
            installation.Shim,
            ["-namespace", Namespace, "-address", ContainerdAddress(installation), "-publish-binary", "/usr/bin/containerd", "-id", id, "start"],
            bundle,
            environment,
            TimeSpan.FromSeconds(60),
            cancellationToken);
    }

    /// <summary>A Create for this container with <paramref name="io"/> (or no IO), as the target wants it.</summary>
    public CreateTaskRequest CreateRequest(ClientIo? io)
    {
        var request = new CreateTaskRequest
        {
            Id = Id,
            Bundle = Bundle,
            Stdin = io?.Stdin ?? "",
            Stdout = io?.Stdout ?? "",
            Stderr = io?.Stderr ?? "",
        };
        _installation.Target.PrepareCreate(request);
        return request;
    }

    /// <summary>Waits until the daemon has exited and removed its socket and lock: nothing left of the shim.</summary>
    public async Task WaitUntilGoneAsync(TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        string? socket = Connection.SocketPath;
        while (IsAlive(DaemonPid) || (socket is not null && (File.Exists(socket) || File.Exists(socket + ".lock"))))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException(
                    $"after {timeout.TotalSeconds:0} s: daemon {DaemonPid} alive: {IsAlive(DaemonPid)}, socket left: " +
                    $"{socket is not null && File.Exists(socket)}, lock left: {socket is not null && File.Exists(socket + ".lock")}\n" +
                    $"shim log:\n{ShimLog}");
            }

            await System.Threading.Tasks.Task.Delay(20).ConfigureAwait(false);
        }
    }

    /// <summary>Whether a process with this pid exists and is not a zombie.</summary>
    public static bool IsAlive(int pid)
    {
        if (pid <= 0)
        {
            return false;
        }

        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close > 0 && stat.Length > close + 2 && stat[close + 2] != 'Z';
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Leaves nothing behind even after a failed test: a daemon still running gets SIGTERM (it kills
    /// its tasks and exits), then SIGKILL and the shim's own <c>delete</c>.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (IsAlive(DaemonPid))
        {
            _ = Kill(DaemonPid, 15);
            DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (IsAlive(DaemonPid) && DateTime.UtcNow < deadline)
            {
                await System.Threading.Tasks.Task.Delay(50).ConfigureAwait(false);
            }

            if (IsAlive(DaemonPid))
            {
                _ = Kill(DaemonPid, 9);
                await System.Threading.Tasks.Task.Delay(100).ConfigureAwait(false);
            }
        }

        // A daemon that died (or was killed) leaves its socket: the shim's own delete cleans up
        // after it, as containerd would have it do; whatever it leaves of this shim goes too.
        string? socket = Connection.SocketPath;
        if (socket is not null && !IsAlive(DaemonPid) && (File.Exists(socket) || File.Exists(socket + ".lock")))
        {
            await ShimCommand.RunAsync(
                _installation.Shim,
                ["-namespace", Namespace, "-address", ContainerdAddress(_installation), "-id", Id, "-bundle", Bundle, "delete"],
                Bundle,
                new Dictionary<string, string> { ["PLUGGABLESHIM_CONFIG"] = _installation.ConfigPath },
                TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            File.Delete(socket);
            File.Delete(socket + ".lock");
        }

        await Connection.DisposeAsync().ConfigureAwait(false);
        if (_ownsEvents)
        {
            await Events.DisposeAsync().ConfigureAwait(false);
        }

        await _logFifo.DisposeAsync().ConfigureAwait(false);
        Directory.Delete(Bundle, recursive: true);
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
