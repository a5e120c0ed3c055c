using Microsoft.Extensions.Logging.Abstractions;
using PluggableShim.Abstractions;
using PluggableShim.Contracts.Task;
using PluggableShim.Host.Grouping;
using PluggableShim.Host.Tasks;
using PluggableShim.Ttrpc;
using TaskClient = PluggableShim.Contracts.Task.Task.TaskClient;

namespace PluggableShim.Host.Tests.Support;

/// <summary>
/// The host's Task service over a real ttrpc socket, with a scripted plugin behind it, so tests
/// see exactly what containerd would: status codes over the wire.
/// </summary>
internal sealed class TaskApiHarness : IAsyncDisposable
{
    private readonly TtrpcServer _server;
    private readonly TtrpcClient _client;
    private readonly string _directory;

    private TaskApiHarness(TtrpcServer server, TtrpcClient client, string directory, ScriptedRuntime runtime,
        RecordingPublisher events, ShimLifetime lifetime)
    {
        _server = server;
        _client = client;
        _directory = directory;
        Runtime = runtime;
        Events = events;
        Lifetime = lifetime;
        Client = new TaskClient(client);
    }

    public TaskClient Client { get; }

    public ScriptedRuntime Runtime { get; }

    public RecordingPublisher Events { get; }

    public ShimLifetime Lifetime { get; }

    /// <summary>A real directory to pass as a bundle.</summary>
    public string Bundle => _directory;

    public static async Task<TaskApiHarness> StartAsync(TaskCapabilities capabilities = TaskCapabilities.Exec | TaskCapabilities.Pause | TaskCapabilities.Pids)
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
        string socket = Path.Combine(directory, "shim.sock");
        server.Serve(TtrpcListener.ListenUnix(socket));
        TtrpcClient client = await TtrpcClient.ConnectAsync("unix://" + socket);
        return new TaskApiHarness(server, client, directory, runtime, events, lifetime);
    }

    public async Task<ScriptedContainer> CreateAsync(string id)
    {
        await Client.CreateAsync(new CreateTaskRequest { Id = id, Bundle = Bundle });
        return Runtime.Containers[id];
    }

    public async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync();
        await _server.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}
