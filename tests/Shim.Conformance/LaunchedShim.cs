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
        string ttrpcSocketPath,
        RecordingEvents events,
        bool ownsEvents,
        FileStream logFifo,
        ShimConnection connection)
    {
        _installation = installation;
        Id = id;
        Bundle = bundle;
        TtrpcSocketPath = ttrpcSocketPath;
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

    /// <summary>
    /// The daemon's ttrpc socket, from the bundle's <c>address</c> file: <c>start</c> writes the ttrpc
    /// address there in every mode (containerd re-reads it to reconnect), and the daemon serves it even in gRPC mode.
    /// </summary>
    public string TtrpcSocketPath { get; }

    /// <summary>The gRPC socket <c>start</c> printed, or null when it printed a ttrpc address.</summary>
    public string? GrpcSocketPath => GrpcSocketOf(Connection.Printed);

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
        bool started = false;
        ShimConnection? connection = null;
        int daemonPid = 0;
        try
        {
            ShimCommandResult result = await RunStartAsync(installation, id, bundle, events.SocketPath, cancellationToken).ConfigureAwait(false);
            if (result.ExitCode != 0)
            {
                throw new Xunit.Sdk.XunitException($"start failed ({result.ExitCode}): {result.Output}");
            }

            started = true;
            string printed = RewriteStartOutputScope.Current is { } rewrite ? rewrite(bundle, result.Output) : result.Output;
            string ttrpcSocket = TtrpcSocketOf(bundle)
                ?? throw new Xunit.Sdk.XunitException(
                    $"start left no ttrpc address (unix:///PATH) in {Path.Combine(bundle, "address")}; it printed \"{result.Output}\"");
            connection = await ShimConnection.ConnectAsync(printed, cancellationToken).ConfigureAwait(false);
            ConnectResponse connected = await connection.Task.ConnectAsync(new ConnectRequest { Id = id }, cancellationToken: cancellationToken);
            daemonPid = (int)connected.ShimPid;
            return new LaunchedShim(installation, id, bundle, ttrpcSocket, events, joinEvents is null, logFifo, connection)
            {
                DaemonPid = daemonPid,
            };
        }
        catch (Exception failure)
        {
            try
            {
                if (connection is not null)
                {
                    await connection.DisposeAsync().ConfigureAwait(false);
                }

                // start succeeded, so a daemon serves this container: nobody else will shut it down,
                // and it would hold its socket in /run/containerd/s until its place lapses.
                if (started)
                {
                    await CleanUpAfterFailedLaunchAsync(installation, id, bundle, daemonPid).ConfigureAwait(false);
                }

                await logFifo.DisposeAsync().ConfigureAwait(false);
                if (joinEvents is null)
                {
                    await events.DisposeAsync().ConfigureAwait(false);
                }

                Directory.Delete(bundle, recursive: true);
            }
            catch (Exception cleanup)
            {
                throw new AggregateException($"launching {id} failed, and so did cleaning up after it", failure, cleanup);
            }

            throw;
        }
    }

    /// <summary>
    /// After a launch whose <c>start</c> succeeded but whose output could not be driven: stops the
    /// daemon (the pid Connect answered, else whatever holds the ttrpc socket named in the bundle's
    /// <c>address</c> file) and runs the shim's <c>delete</c>, as <see cref="DisposeAsync"/> does.
    /// </summary>
    private static async Task CleanUpAfterFailedLaunchAsync(ConformanceInstallation installation, string id, string bundle, int daemonPid)
    {
        string? ttrpcSocket = TtrpcSocketOf(bundle);
        IReadOnlyList<int> daemons = daemonPid > 0 ? [daemonPid] : ttrpcSocket is null ? [] : SocketHolders(ttrpcSocket);
        foreach (int pid in daemons)
        {
            await StopAsync(pid).ConfigureAwait(false);
        }

        if (!daemons.Any(IsAlive))
        {
            await DeleteLeftoversAsync(installation, id, bundle, ttrpcSocket, grpcSocket: null).ConfigureAwait(false);
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

    /// <summary>
    /// What of this shim's daemon is still on disk: its ttrpc socket and that socket's <c>.lock</c>
    /// (in every mode), and its gRPC socket (the one printed, and any <c>SOCKET.*.grpc</c> beside the ttrpc socket).
    /// </summary>
    public IReadOnlyList<string> LeftBehind() => Leftovers(TtrpcSocketPath, GrpcSocketPath);

    /// <summary>Waits until the daemon has exited and removed its sockets and lock: nothing left of the shim.</summary>
    public async Task WaitUntilGoneAsync(TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (IsAlive(DaemonPid) || LeftBehind().Count > 0)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new Xunit.Sdk.XunitException(
                    $"after {timeout.TotalSeconds:0} s: daemon {DaemonPid} alive: {IsAlive(DaemonPid)}, left behind: " +
                    $"[{string.Join(", ", LeftBehind())}]\nshim log:\n{ShimLog}");
            }

            await System.Threading.Tasks.Task.Delay(20).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The ttrpc socket named by the bundle's <c>address</c> file (<c>unix:///run/containerd/s/HEX</c>),
    /// or null when the file is missing or holds something else.
    /// </summary>
    public static string? TtrpcSocketOf(string bundle)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        string file = Path.Combine(bundle, "address");
        string address;
        try
        {
            address = File.ReadAllText(file).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        const string Scheme = "unix://";
        return address.StartsWith(Scheme, StringComparison.Ordinal) && Path.IsPathRooted(address[Scheme.Length..])
            ? address[Scheme.Length..]
            : null;
    }

    /// <summary>
    /// The processes other than this one that hold a socket bound at <paramref name="socketPath"/>
    /// (the daemon holds its listening socket): <c>/proc/net/unix</c> gives the inodes bound to the
    /// path, <c>/proc/PID/fd</c> who holds them.
    /// </summary>
    public static IReadOnlyList<int> SocketHolders(string socketPath)
    {
        ArgumentNullException.ThrowIfNull(socketPath);
        HashSet<string> inodes = [];
        foreach (string line in File.ReadLines("/proc/net/unix").Skip(1))
        {
            // Num RefCount Protocol Flags Type St Inode Path
            string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 8 && fields[7] == socketPath)
            {
                inodes.Add($"socket:[{fields[6]}]");
            }
        }

        var holders = new List<int>();
        if (inodes.Count == 0)
        {
            return holders;
        }

        foreach (string process in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(process), out int pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                if (Directory.EnumerateFileSystemEntries(Path.Combine(process, "fd"))
                    .Any(fd => new FileInfo(fd).LinkTarget is { } target && inodes.Contains(target)))
                {
                    holders.Add(pid);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // It exited while being read.
            }
        }

        return holders;
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
        await StopAsync(DaemonPid).ConfigureAwait(false);

        // A daemon that died (or was killed) leaves its sockets: the shim's own delete cleans up
        // after it, as containerd would have it do; whatever it leaves of this shim goes too.
        if (!IsAlive(DaemonPid))
        {
            await DeleteLeftoversAsync(_installation, Id, Bundle, TtrpcSocketPath, GrpcSocketPath).ConfigureAwait(false);
        }

        await Connection.DisposeAsync().ConfigureAwait(false);
        if (_ownsEvents)
        {
            await Events.DisposeAsync().ConfigureAwait(false);
        }

        await _logFifo.DisposeAsync().ConfigureAwait(false);
        Directory.Delete(Bundle, recursive: true);
    }

    /// <summary>SIGTERM (the daemon kills its tasks and exits), then SIGKILL after 15 s.</summary>
    private static async Task StopAsync(int pid)
    {
        if (!IsAlive(pid))
        {
            return;
        }

        _ = Kill(pid, 15);
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (IsAlive(pid) && DateTime.UtcNow < deadline)
        {
            await System.Threading.Tasks.Task.Delay(50).ConfigureAwait(false);
        }

        if (IsAlive(pid))
        {
            _ = Kill(pid, 9);
            await System.Threading.Tasks.Task.Delay(100).ConfigureAwait(false);
        }
    }

    /// <summary>Runs the shim's <c>delete</c> when a dead daemon left files, then removes whatever it left.</summary>
    private static async Task DeleteLeftoversAsync(
        ConformanceInstallation installation, string id, string bundle, string? ttrpcSocket, string? grpcSocket)
    {
        if (Leftovers(ttrpcSocket, grpcSocket).Count == 0)
        {
            return;
        }

        await ShimCommand.RunAsync(
            installation.Shim,
            ["-namespace", Namespace, "-address", ContainerdAddress(installation), "-id", id, "-bundle", bundle, "delete"],
            bundle,
            new Dictionary<string, string> { ["PLUGGABLESHIM_CONFIG"] = installation.ConfigPath },
            TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        foreach (string file in Leftovers(ttrpcSocket, grpcSocket))
        {
            File.Delete(file);
        }
    }

    /// <summary>The sockets and lock of the daemon serving <paramref name="ttrpcSocket"/> still on disk.</summary>
    internal static List<string> Leftovers(string? ttrpcSocket, string? grpcSocket)
    {
        var left = new List<string>();
        if (ttrpcSocket is not null)
        {
            left.AddRange(new[] { ttrpcSocket, ttrpcSocket + ".lock" }.Where(File.Exists));
            if (Path.GetDirectoryName(ttrpcSocket) is { } directory && Directory.Exists(directory))
            {
                left.AddRange(Directory.EnumerateFiles(directory, Path.GetFileName(ttrpcSocket) + ".*.grpc"));
            }
        }

        if (grpcSocket is not null && File.Exists(grpcSocket) && !left.Contains(grpcSocket))
        {
            left.Add(grpcSocket);
        }

        return left;
    }

    private static string? GrpcSocketOf(ShimAddress printed) => printed.Protocol == "grpc" ? printed.SocketPath : null;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
