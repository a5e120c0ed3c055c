using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PluggableShim.Host.Tasks;

namespace PluggableShim.Host.Transport.Grpc;

/// <summary>
/// The Task API over gRPC: Kestrel, HTTP/2 without TLS, on a Unix socket, serving the daemon's one
/// <see cref="TaskService"/> as <c>containerd.task.v2.Task</c> and, through
/// <see cref="TaskV3Service"/>, as <c>containerd.task.v3.Task</c>. Like the ttrpc server, it
/// accepts only peers with the daemon's own uid.
/// </summary>
internal sealed partial class GrpcTaskServer : IGrpcServer
{
    private readonly WebApplication _app;
    private readonly string _socketPath;

    private GrpcTaskServer(WebApplication app, string socketPath)
    {
        _app = app;
        _socketPath = socketPath;
    }

    public static async Task<IGrpcServer> StartAsync(
        string socketPath,
        TaskService tasks,
        ILoggerFactory loggerFactory,
        CancellationToken cancellationToken)
    {
        // The empty builder reads no appsettings.json, environment or command line: the daemon's
        // working directory is a container's bundle, and its environment is containerd's.
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions
        {
            ApplicationName = "pluggableshim",
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.WebHost.UseKestrelCore();
        if (OperatingSystem.IsWindows())
        {
            // Compiled, unreachable for now: on Windows start refuses the gRPC forms (PipeStart),
            // since the portable host does not pass Kestrel a named pipe yet.
            builder.WebHost.UseNamedPipes();
        }

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            Action<ListenOptions> configure = listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                listen.Use(next => connection => SameUser(connection) ? next(connection) : Refuse(connection));
            };
            if (OperatingSystem.IsWindows())
            {
                kestrel.ListenNamedPipe(socketPath.Replace(@"\\.\pipe\", string.Empty, StringComparison.OrdinalIgnoreCase), configure);
            }
            else
            {
                kestrel.ListenUnixSocket(socketPath, configure);
            }
        });
        builder.Logging.ClearProviders().AddProvider(new ForwardingLoggerProvider(loggerFactory));
        // Kestrel's and gRPC's own chatter (a line per request) is not for the shim's log.
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning).AddFilter("Grpc", LogLevel.Warning);
        builder.Services.AddRoutingCore();
        // ttrpc's own frame limit: Task API messages are small, and each of up to 100 streams per
        // connection may hold one message in memory.
        builder.Services.AddGrpc(options => options.MaxReceiveMessageSize = 4 << 20);
        builder.Services.AddSingleton(tasks);
        builder.Services.AddSingleton(new TaskV3Service(tasks));

        WebApplication app = builder.Build();
        app.UseRouting();
        app.MapGrpcService<TaskService>();
        app.MapGrpcService<TaskV3Service>();
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        return new GrpcTaskServer(app, socketPath);
    }

    public Task StopAsync(CancellationToken cancellationToken) => _app.StopAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync().ConfigureAwait(false);
        if (!OperatingSystem.IsWindows())
        {
            // Kestrel unlinks the socket it bound; make sure (the path is this daemon's alone).
            File.Delete(_socketPath);
        }
    }

    private static bool SameUser(ConnectionContext connection)
    {
        if (!OperatingSystem.IsLinux())
        {
            return true; // a named pipe's ACL guards it on Windows; other Unixes lack SO_PEERCRED
        }

        Socket? socket = connection.Features.Get<IConnectionSocketFeature>()?.Socket;
        if (socket is null)
        {
            return false;
        }

        Span<byte> ucred = stackalloc byte[12];
        const int SolSocket = 1;
        const int SoPeerCred = 17;
        return socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred) >= 12
               && MemoryMarshal.Read<uint>(ucred[4..]) == GetEffectiveUid();
    }

    private static Task Refuse(ConnectionContext connection)
    {
        connection.Abort(new ConnectionAbortedException("peer is not the shim's own user"));
        return Task.CompletedTask;
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEffectiveUid();

    /// <summary>Sends ASP.NET's log lines to the daemon's own logger factory (the bundle's log).</summary>
    private sealed class ForwardingLoggerProvider(ILoggerFactory target) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => target.CreateLogger(categoryName);

        public void Dispose()
        {
            // The daemon owns the factory.
        }
    }
}
