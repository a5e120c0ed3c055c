using Microsoft.Extensions.Logging.Abstractions;
using PluggableShim.Abstractions;
using PluggableShim.Contracts.Task;
using PluggableShim.Host.Grouping;
using PluggableShim.Host.Tasks;
using PluggableShim.Host.Transport;
using ShimAddress = PluggableShim.Conformance.ShimAddress;
using ShimConnection = PluggableShim.Conformance.ShimConnection;
using PluggableShim.Ttrpc;
using TaskClient = PluggableShim.Contracts.Task.Task.TaskClient;

namespace PluggableShim.Host.Tests.Support;

/// <summary>
/// The host's Task service over a real socket, with a scripted plugin behind it, so tests see
/// exactly what containerd would: status codes over the wire. The transport is one of
/// <see cref="Transports"/>: the daemon's ttrpc server (with the v2 service and the v3 adapter
/// bound, as the daemon binds them) or its gRPC server, driven by a generated client through
/// <see cref="ShimConnection"/>, which sends v2 calls to v3 for the v3 transports.
/// </summary>
internal sealed class TaskApiHarness : IAsyncDisposable
{
    private readonly TtrpcServer _server;
    private readonly IGrpcServer? _grpc;
    private readonly ShimConnection _client;
    private readonly string _directory;

    private TaskApiHarness(TtrpcServer server, IGrpcServer? grpc, ShimConnection client, string directory, ScriptedRuntime runtime,
        RecordingPublisher events, ShimLifetime lifetime)
    {
        _server = server;
        _grpc = grpc;
        _client = client;
        _directory = directory;
        Runtime = runtime;
        Events = events;
        Lifetime = lifetime;
        Client = new TaskClient(client.CallInvoker);
    }

    /// <summary>Every transport and Task API version the daemon serves.</summary>
    public static TheoryData<string> Transports => ["ttrpc-v2", "ttrpc-v3", "grpc-v2", "grpc-v3"];

    /// <summary>Each value with each transport.</summary>
    public static TheoryData<string, string> WithTransports(string[] values)
    {
        var data = new TheoryData<string, string>();
        foreach (string value in values)
        {
            foreach (string transport in Transports)
            {
                data.Add(value, transport);
            }
        }

        return data;
    }

    public TaskClient Client { get; }

    public ScriptedRuntime Runtime { get; }

    public RecordingPublisher Events { get; }

    public ShimLifetime Lifetime { get; }

    /// <summary>The gRPC server's socket, for the gRPC transports.</summary>
    public string? GrpcSocket { get; private set; }

    /// <summary>A real directory to pass as a bundle.</summary>
    public string Bundle => _directory;

    public static async Task<TaskApiHarness> StartAsync(
        TaskCapabilities capabilities = TaskCapabilities.Exec | TaskCapabilities.Pause | TaskCapabilities.Pids,
        string transport = "ttrpc-v2")
    {
        string directory = Directory.CreateTempSubdirectory("shim-host-tests-").FullName;
        var runtime = new ScriptedRuntime();
        var events = new RecordingPublisher();
        var lifetime = new ShimLifetime();
        var options = new ShimOptions
        {
            Namespace = "test",
            Plugin = new PluginInfo("scripted", "1.0.0", "unit-test plugin") { Capabilities = capabilities },
            OutputDrainTimeout = TimeSpan.FromSeconds(1),
        };
        var membership = new GroupMembership(lifetime, options, TimeProvider.System, NullLogger<GroupMembership>.Instance);
        var table = new TaskTable(runtime, events, options, NullLoggerFactory.Instance, membership);
        var service = new TaskService(table, membership, options, NullLogger<TaskService>.Instance);
        var server = new TtrpcServer();
        PluggableShim.Contracts.Task.Task.BindService(server.Binder, service);
        PluggableShim.Contracts.Task.V3.Task.BindService(server.Binder, new TaskV3Service(service));
        string socket = Path.Combine(directory, "shim.sock");
        server.Serve(TtrpcListener.ListenUnix(socket));
        int version = transport.EndsWith("-v3", StringComparison.Ordinal) ? 3 : 2;
        IGrpcServer? grpc = null;
        ShimAddress address = new("ttrpc", version, "unix://" + socket, IsJson: version == 3);
        if (transport.StartsWith("grpc", StringComparison.Ordinal))
        {
            string grpcSocket = Path.Combine(directory, "shim.grpc");
            grpc = await GrpcTransport.StartAsync(grpcSocket, service, NullLoggerFactory.Instance);
            address = new ShimAddress("grpc", version, grpcSocket, IsJson: true);
        }

        ShimConnection client = await address.ConnectAsync();
        return new TaskApiHarness(server, grpc, client, directory, runtime, events, lifetime)
        {
            GrpcSocket = grpc is null ? null : address.SocketPath,
        };
    }

    public async Task<ScriptedContainer> CreateAsync(string id)
    {
        await Client.CreateAsync(new CreateTaskRequest { Id = id, Bundle = Bundle });
        return Runtime.Containers[id];
    }

    public async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync();
        if (_grpc is not null)
        {
            await _grpc.DisposeAsync();
        }

        await _server.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}
