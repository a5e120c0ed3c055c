using BenchmarkDotNet.Attributes;
using Grpc.Core;
using StateRequest = PluggableShim.Contracts.Task.StateRequest;
using StateResponse = PluggableShim.Contracts.Task.StateResponse;
using TaskApi = PluggableShim.Contracts.Task.Task;

namespace PluggableShim.Ttrpc.Bench;

/// <summary>
/// A ttrpc unary round trip over a Unix domain socket: <c>containerd.task.v2.Task/State</c>
/// from <see cref="TtrpcClient"/> (through the generated <see cref="TaskApi.TaskClient"/>)
/// to <see cref="TtrpcServer"/>, whose handler returns a fixed answer. Every caller shares
/// ONE connection, as containerd does with a shim.
/// </summary>
/// <remarks>
/// Each invocation makes <see cref="CallsPerInvoke"/> calls in total, split evenly over
/// <see cref="Callers"/> concurrent callers that each await their calls one after another,
/// so the reported time, Op/s and Allocated figures are per call. Client and server live in
/// this one process: the allocations are both sides' together, and both share the two cores.
/// </remarks>
[MemoryDiagnoser]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001",
    Justification = "BenchmarkDotNet owns the lifetime: [GlobalCleanup] disposes the server and the connection.")]
public class StateRoundTrip
{
    /// <summary>Calls per invocation; divisible by every value of <see cref="Callers"/>.</summary>
    public const int CallsPerInvoke = 512;

    private static readonly StateRequest Request = new() { Id = BenchTask.ContainerId };

    // containerd puts the namespace on every call it makes to a shim.
    private static readonly Metadata Headers = new() { { "containerd-namespace-ttrpc", "default" } };

    private DirectoryInfo? _folder;
    private TtrpcServer? _server;
    private TtrpcClient? _connection;
    private TaskApi.TaskClient? _client;
    private Task[] _callers = [];

    /// <summary>How many callers share the connection at once.</summary>
    [Params(1, 16)]
    public int Callers { get; set; }

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _folder = Directory.CreateTempSubdirectory("ttrpc-bench-");
        string socketPath = Path.Combine(_folder.FullName, "s.sock");
        _server = new TtrpcServer();
        TaskApi.BindService(_server.Binder, new BenchTask());
        _server.Serve(TtrpcListener.ListenUnix(socketPath));
        _connection = await TtrpcClient.ConnectAsync("unix://" + socketPath).ConfigureAwait(false);
        _client = new TaskApi.TaskClient(_connection);
        _callers = new Task[Callers];

        // Fail the setup, not the measurement, if the round trip does not work at all.
        StateResponse answer = await _client.StateAsync(Request, Headers).ConfigureAwait(false);
        if (answer.Pid != BenchTask.Pid)
        {
            throw new InvalidOperationException($"unexpected State answer: {answer}");
        }
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        if (_connection is not null)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }

        if (_server is not null)
        {
            await _server.DisposeAsync().ConfigureAwait(false);
        }

        _folder?.Delete(recursive: true);
    }

    [Benchmark(OperationsPerInvoke = CallsPerInvoke)]
    public Task State()
    {
        int calls = CallsPerInvoke / Callers;
        for (int i = 0; i < _callers.Length; i++)
        {
            _callers[i] = CallInSequenceAsync(_client!, calls);
        }

        return Task.WhenAll(_callers);
    }

    private static async Task CallInSequenceAsync(TaskApi.TaskClient client, int calls)
    {
        for (int i = 0; i < calls; i++)
        {
            await client.StateAsync(Request, Headers).ConfigureAwait(false);
        }
    }
}
