using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using PluggableShim.Contracts.Events;
using PluggableShim.Testing;
using PluggableShim.Ttrpc;
using TaskClient = PluggableShim.Contracts.Task.Task.TaskClient;

namespace PluggableShim.Runhcs.Tests.Support;

/// <summary>
/// The published shim installed as <c>containerd-shim-runhcs-v1</c>, launched through
/// <c>start</c> as containerd does, with the stand-in runhcs configured in its config file and
/// a recording Events server in place of containerd's; driven over its socket. The bundle's
/// <c>log</c> FIFO is read, so the shim's own log (where runhcs's entries are re-emitted) is visible.
/// </summary>
public sealed partial class RunhcsShim : IAsyncDisposable
{
    private readonly string _work;
    private readonly TtrpcServer _events;
    private readonly TtrpcClient _client;
    private readonly FileStream _logFifo;
    private readonly StringBuilder _log = new();
    private readonly Task _logReader;
    private volatile bool _stopping;
    private int _daemonPid;

    private RunhcsShim(string work, string id, string bundle, TtrpcServer events, RecordingEvents recorded,
        TtrpcClient client, FileStream logFifo)
    {
        _work = work;
        Id = id;
        Bundle = bundle;
        _events = events;
        Events = recorded;
        _client = client;
        _logFifo = logFifo;
        Task = new TaskClient(client);
        _logReader = System.Threading.Tasks.Task.Factory.StartNew(
            ReadLog, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    public const string Namespace = "runhcs-e2e";

    public string Id { get; }

    public string Bundle { get; }

    public TaskClient Task { get; }

    public RecordingEvents Events { get; }

    /// <summary>Where the stand-in keeps its state (per <c>--root</c> key, then per container).</summary>
    public string StandinState => Path.Combine(_work, "standin-state");

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

    public static async Task<RunhcsShim> StartAsync(string id, object spec, CancellationToken cancellationToken)
    {
        string work = Directory.CreateTempSubdirectory("rh-e2e-").FullName;
        string bundle = Path.Combine(work, "bundle");
        Directory.CreateDirectory(bundle);
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), JsonSerializer.Serialize(spec), cancellationToken);
        string logPath = Path.Combine(bundle, "log");
        if (MkFifo(logPath, 0x180) != 0)
        {
            throw new IOException($"mkfifo log: errno {Marshal.GetLastPInvokeError()}");
        }

        // Read-write, as containerd opens it: the shim's non-blocking write-only open then finds a reader.
        var logFifo = new FileStream(logPath, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 0);

        var recorded = new RecordingEvents();
        var events = new TtrpcServer();
        Contracts.Events.Events.BindService(events.Binder, recorded);
        string eventsSocket = Path.Combine(work, "events.sock");
        events.Serve(TtrpcListener.ListenUnix(eventsSocket));

        string config = Path.Combine(work, "pluggableshim.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["plugins"] = new Dictionary<string, object>
            {
                ["runhcs"] = new Dictionary<string, object>
                {
                    ["runhcsPath"] = StandinPath(),
                    ["logSocketDirectory"] = work,
                    ["startTimeoutSeconds"] = 10,
                },
            },
        }), cancellationToken);

        string shim = await ShimBuild.InstalledAsAsync("runhcs", cancellationToken);
        CommandResult started = await ProcessRunner.RunAsync(
            "/bin/sh",
            ["-c", $"cd '{bundle}' && exec '{shim}' -namespace {Namespace} -address '{work}/containerd.sock' " +
                   $"-publish-binary /usr/bin/containerd -id {id} start"],
            TimeSpan.FromSeconds(60),
            environment: new Dictionary<string, string>
            {
                ["TTRPC_ADDRESS"] = eventsSocket,
                ["PLUGGABLESHIM_CONFIG"] = config,
                ["RUNHCS_STANDIN_STATE"] = Path.Combine(work, "standin-state"),
            },
            cancellationToken: cancellationToken);
        started.EnsureSuccess();
        TtrpcClient client = await TtrpcClient.ConnectAsync(started.Stdout.Trim(), cancellationToken: cancellationToken);
        var launched = new RunhcsShim(work, id, bundle, events, recorded, client, logFifo);
        launched._daemonPid = await launched.DaemonPidAsync();
        return launched;
    }

    /// <summary>The stand-in's app host, built beside this test project by its project reference.</summary>
    public static string StandinPath()
    {
        string bin = Repository.PathOf("tests/Runhcs.Standin/bin");
        return Directory.EnumerateFiles(bin, "runhcs", SearchOption.AllDirectories)
                   .OrderByDescending(File.GetLastWriteTimeUtc)
                   .FirstOrDefault()
               ?? throw new InvalidOperationException($"the stand-in runhcs is not built under {bin}");
    }

    public async Task<int> DaemonPidAsync() =>
        (int)(await Task.ConnectAsync(new Contracts.Task.ConnectRequest { Id = Id })).ShimPid;

    public async Task WaitForLogAsync(string text, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!ShimLog.Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the shim log never showed \"{text}\"; it holds:\n{ShimLog}");
            }

            await System.Threading.Tasks.Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        // A test that failed half-way leaves a daemon with tasks: SIGTERM makes it kill them
        // (runhcs delete --force) and exit, so that nothing outlives the test.
        if (_daemonPid > 0 && Posix.IsAlive(_daemonPid))
        {
            Posix.Kill(_daemonPid, 15);
            DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (Posix.IsAlive(_daemonPid) && DateTime.UtcNow < deadline)
            {
                await System.Threading.Tasks.Task.Delay(50);
            }
        }

        await _client.DisposeAsync();
        await _events.DisposeAsync();
        // The reader blocks in read(2) on a FIFO we also hold for writing: a newline wakes it to see the stop.
        _stopping = true;
        await _logFifo.WriteAsync("\n"u8.ToArray());
        await _logReader.WaitAsync(TimeSpan.FromSeconds(5));
        await _logFifo.DisposeAsync();
        Directory.Delete(_work, recursive: true);
    }

    private void ReadLog()
    {
        byte[] buffer = new byte[8192];
        try
        {
            int n;
            while (!_stopping && (n = _logFifo.Read(buffer)) > 0)
            {
                lock (_log)
                {
                    _log.Append(Encoding.UTF8.GetString(buffer, 0, n));
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // Disposed.
        }
    }

    [LibraryImport("libc", EntryPoint = "mkfifo", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    internal static partial int MkFifo(string path, uint mode);

    /// <summary>containerd's side of Events/Forward: keeps every envelope.</summary>
    public sealed class RecordingEvents : Contracts.Events.Events.EventsBase
    {
        private readonly List<Envelope> _envelopes = [];

        public IReadOnlyList<string> Topics
        {
            get
            {
                lock (_envelopes)
                {
                    return [.. _envelopes.Select(e => e.Topic)];
                }
            }
        }

        public override Task<Empty> Forward(ForwardRequest request, ServerCallContext context)
        {
            lock (_envelopes)
            {
                _envelopes.Add(request.Envelope);
            }

            return System.Threading.Tasks.Task.FromResult(new Empty());
        }
    }
}
