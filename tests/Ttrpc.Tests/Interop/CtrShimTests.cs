using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;
using PluggableShim.Ttrpc.Tests.Support;
using StateResponse = PluggableShim.Contracts.Task.StateResponse;
using TaskApi = PluggableShim.Contracts.Task.Task;
using TaskStatus = PluggableShim.Contracts.Types.Status;

namespace PluggableShim.Ttrpc.Tests.Interop;

/// <summary>
/// Our <see cref="TtrpcServer"/> against containerd's own ttrpc client: <c>ctr shim</c> dials a
/// shim directly at the socket it computes from address, namespace and id, and calls the Task API.
/// ctr does not talk to containerd for this; the running one only supplies a realistic address.
/// </summary>
public sealed class CtrShimTests(ContainerdPeer peer) : IClassFixture<ContainerdPeer>
{
    private const string Namespace = "interop-shim";

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Ctr_shim_state_prints_what_our_State_handler_answered()
    {
        LocalContainerd containerd = peer.Require();
        string id = UniqueId();
        await using var shim = CtrShimServer.Start(containerd.Address, id);
        shim.Task.OnState = (request, _) => Task.FromResult(new StateResponse
        {
            Id = request.Id,
            Bundle = "/interop/bundles/" + request.Id,
            Pid = 31337,
            Status = TaskStatus.Running,
            ExecId = "interop-exec",
        });

        CommandResult result = (await CtrShimAsync(containerd, id, "state")).EnsureSuccess();

        Assert.Equal([id], shim.Task.Calls);
        using var printed = JsonDocument.Parse(result.Stdout);
        JsonElement state = printed.RootElement;
        Assert.Equal(id, state.GetProperty("id").GetString());
        Assert.Equal("/interop/bundles/" + id, state.GetProperty("bundle").GetString());
        Assert.Equal(31337, state.GetProperty("pid").GetInt32());
        Assert.Equal((int)TaskStatus.Running, state.GetProperty("status").GetInt32()); // ctr prints the number
        Assert.Equal("interop-exec", state.GetProperty("exec_id").GetString());

        await shim.DisposeAsync();
        Assert.False(shim.SocketLeftBehind, "the server left its socket file in /run/containerd/s");
    }

    [Fact]
    public async Task Ctr_shim_start_of_a_method_we_do_not_implement_fails_Unimplemented()
    {
        LocalContainerd containerd = peer.Require();
        string id = UniqueId();
        await using var shim = CtrShimServer.Start(containerd.Address, id);

        CommandResult start = await CtrShimAsync(containerd, id, "start");

        // ctr prints the status its ttrpc client received: "ctr: rpc error: code = Unimplemented desc = …".
        Assert.NotEqual(0, start.ExitCode);
        Assert.Contains("code = Unimplemented", start.Stderr, StringComparison.Ordinal);

        // The refusal broke nothing: the next ctr connection is served.
        (await CtrShimAsync(containerd, id, "state")).EnsureSuccess();
        Assert.Equal([id], shim.Task.Calls);
    }

    private static Task<CommandResult> CtrShimAsync(LocalContainerd containerd, string id, string command) =>
        containerd.CtrAsync(Namespace, ["shim", "--id", id, command], cancellationToken: Token);

    private static string UniqueId() => "interop-" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>A <see cref="ScriptedTask"/> served where <c>ctr shim --id ID</c> dials.</summary>
    private sealed class CtrShimServer : IAsyncDisposable
    {
        private readonly TtrpcServer _server;
        private bool _disposed;

        private CtrShimServer(TtrpcServer server, ScriptedTask task, string socketPath)
        {
            _server = server;
            Task = task;
            SocketPath = socketPath;
        }

        public ScriptedTask Task { get; }

        public string SocketPath { get; }

        /// <summary>After dispose: whether the server failed to remove its socket file.</summary>
        public bool SocketLeftBehind { get; private set; }

        public static CtrShimServer Start(string containerdAddress, string id)
        {
            string socketPath = SocketPathFor(containerdAddress, Namespace, id);
            Directory.CreateDirectory(Path.GetDirectoryName(socketPath)!);
            var server = new TtrpcServer();
            var task = new ScriptedTask();
            TaskApi.BindService(server.Binder, task);
            server.Serve(TtrpcListener.ListenUnix(socketPath));
            return new CtrShimServer(server, task, socketPath);
        }

        /// <summary>
        /// Where ctr 1.6 dials: <c>/run/containerd/s/</c> + hex sha256 of Go's
        /// <c>path.Join(address, ns, id)</c>, which for a clean absolute address is a plain join.
        /// </summary>
        private static string SocketPathFor(string address, string ns, string id)
        {
            byte[] digest = SHA256.HashData(Encoding.UTF8.GetBytes($"{address}/{ns}/{id}"));
            return "/run/containerd/s/" + Convert.ToHexStringLower(digest);
        }

        public async ValueTask DisposeAsync()
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            await _server.DisposeAsync();

            // The listener owns the socket file; a failed test must still leave no litter behind.
            SocketLeftBehind = File.Exists(SocketPath);
            File.Delete(SocketPath);
        }
    }
}
