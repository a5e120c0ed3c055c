using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using PluggableShim.Host.Tasks;

namespace PluggableShim.Host.Transport;

/// <summary>
/// The daemon's door to its gRPC server. Nothing here names an ASP.NET type, so a daemon that
/// serves ttrpc only never loads Kestrel or ASP.NET (their start-up cost is paid in gRPC mode
/// alone); the server itself is <see cref="Grpc.GrpcTaskServer"/>.
/// </summary>
internal static class GrpcTransport
{
    /// <summary>Stands for the server a ttrpc-only daemon does not run.</summary>
    public static IGrpcServer None { get; } = new NoServer();

    /// <summary>Starts serving <c>containerd.task.v2.Task</c> and <c>v3.Task</c> on <paramref name="socketPath"/>.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static Task<IGrpcServer> StartAsync(
        string socketPath,
        TaskService tasks,
        ILoggerFactory loggerFactory,
        CancellationToken cancellationToken = default) =>
        Grpc.GrpcTaskServer.StartAsync(socketPath, tasks, loggerFactory, cancellationToken);

    private sealed class NoServer : IGrpcServer
    {
        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}

/// <summary>A running gRPC server.</summary>
internal interface IGrpcServer : IAsyncDisposable
{
    /// <summary>Stops accepting calls and waits for those in flight, at most until <paramref name="cancellationToken"/>.</summary>
    Task StopAsync(CancellationToken cancellationToken);
}
