using Grpc.Core;
using TaskApi = PluggableShim.Contracts.Task.Task;

namespace PluggableShim.Ttrpc.Tests.Support;

/// <summary>
/// A <see cref="TtrpcServer"/> serving a <see cref="ScriptedTask"/> on a Unix socket in a
/// private temporary folder, removed again on dispose.
/// </summary>
internal sealed class ServerHarness : IAsyncDisposable
{
    private readonly DirectoryInfo _folder;

    private ServerHarness(DirectoryInfo folder, TtrpcServer server, ScriptedTask task)
    {
        _folder = folder;
        Server = server;
        Task = task;
    }

    public TtrpcServer Server { get; }

    public ScriptedTask Task { get; }

    public string SocketPath => Path.Combine(_folder.FullName, "s.sock");

    public string Address => "unix://" + SocketPath;

    public static ServerHarness Start(TtrpcServerOptions? options = null, Action<ServiceBinderBase>? bindMore = null)
    {
        DirectoryInfo folder = Directory.CreateTempSubdirectory("ttrpc-");
        var server = new TtrpcServer(options);
        var task = new ScriptedTask();
        TaskApi.BindService(server.Binder, task);
        bindMore?.Invoke(server.Binder);
        var harness = new ServerHarness(folder, server, task);
        server.Serve(TtrpcListener.ListenUnix(harness.SocketPath));
        return harness;
    }

    public Task<TtrpcClient> ConnectAsync() =>
        TtrpcClient.ConnectAsync(Address, cancellationToken: TestContext.Current.CancellationToken);

    public Task<RawConnection> ConnectRawAsync() => RawConnection.ConnectAsync(SocketPath);

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        _folder.Delete(recursive: true);
    }
}
