using System.Net.Sockets;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using PluggableShim.Ttrpc.Internal;

namespace PluggableShim.Ttrpc;

/// <summary>
/// A unary ttrpc server. Bind generated gRPC service classes through <see cref="Binder"/>
/// (<c>Task.BindService(server.Binder, impl)</c>), then <see cref="Serve"/> one or more listeners.
/// </summary>
public sealed class TtrpcServer : IAsyncDisposable
{
    private readonly TtrpcServerOptions _options;
    private readonly ILogger _logger;
    private readonly MethodRegistry _methods = new();
    private readonly CancellationTokenSource _stopAccepting = new();
    private readonly Lock _gate = new();

    // Guarded by _gate.
    private readonly Dictionary<ServerConnection, Task> _connections = [];
    private readonly List<(TtrpcListener Listener, Task Loop)> _listeners = [];
    private bool _stopped;

    /// <summary>Creates a server; nothing is served until <see cref="Serve"/>.</summary>
    public TtrpcServer(TtrpcServerOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        _options = options ?? new TtrpcServerOptions();
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("PluggableShim.Ttrpc.Server");
    }

    /// <summary>Where generated <c>BindService</c> methods register their unary handlers.</summary>
    public ServiceBinderBase Binder => _methods;

    /// <summary>Starts accepting connections on <paramref name="listener"/>, which the server now owns.</summary>
    public void Serve(TtrpcListener listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        lock (_gate)
        {
            if (_stopped)
            {
                // The listener is ours now: close it rather than leak its socket.
                listener.DisposeAsync().AsTask().GetAwaiter().GetResult();
                throw new ObjectDisposedException(nameof(TtrpcServer), "the server has been shut down");
            }

            _methods.Freeze();
            _listeners.Add((listener, Task.Run(() => AcceptLoopAsync(listener))));
        }
    }

    /// <summary>
    /// Stops accepting, lets in-flight calls finish and answer, and closes each connection
    /// once idle. If <paramref name="cancellationToken"/> fires first, the rest are closed at once.
    /// </summary>
    public async Task ShutdownAsync(CancellationToken cancellationToken = default)
    {
        Task[] pending = await StopListeningAsync().ConfigureAwait(false);
        ServerConnection[] connections;
        lock (_gate)
        {
            connections = [.. _connections.Keys];
        }

        foreach (ServerConnection connection in connections)
        {
            connection.Drain();
        }

        try
        {
            await Task.WhenAll(pending).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            AbortAll();
            await Task.WhenAll(pending).ConfigureAwait(false);
        }
    }

    /// <summary>Closes every listener and connection now; in-flight calls are abandoned.</summary>
    public async ValueTask DisposeAsync()
    {
        Task[] pending = await StopListeningAsync().ConfigureAwait(false);
        AbortAll();
        await Task.WhenAll(pending).ConfigureAwait(false);
        _stopAccepting.Dispose();
    }

    private async Task<Task[]> StopListeningAsync()
    {
        (TtrpcListener Listener, Task Loop)[] listeners;
        lock (_gate)
        {
            _stopped = true;
            listeners = [.. _listeners];
            _listeners.Clear();
        }

        // Synchronously, before the caller gets control back: once ShutdownAsync or
        // DisposeAsync has been called, no new connection is accepted.
        if (!_stopAccepting.IsCancellationRequested)
        {
            _stopAccepting.Cancel();
        }

        var closing = new List<Task>(listeners.Length);
        foreach ((TtrpcListener listener, _) in listeners)
        {
            closing.Add(listener.DisposeAsync().AsTask());
        }

        await Task.WhenAll(closing).ConfigureAwait(false);

        foreach ((_, Task loop) in listeners)
        {
            await loop.ConfigureAwait(false);
        }

        lock (_gate)
        {
            return [.. _connections.Values];
        }
    }

    private void AbortAll()
    {
        lock (_gate)
        {
            foreach (ServerConnection connection in _connections.Keys)
            {
                connection.Abort();
            }
        }
    }

    private async Task AcceptLoopAsync(TtrpcListener listener)
    {
        uint ownUid = _options.RequireSameUser ? PeerCredentials.EffectiveUid() : 0;
        while (!_stopAccepting.IsCancellationRequested)
        {
            AcceptedConnection accepted;
            try
            {
                accepted = await listener.AcceptAsync(_stopAccepting.Token).ConfigureAwait(false);
            }
            catch (Exception) when (_stopAccepting.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is SocketException or IOException)
            {
                // Out of descriptors or a connection reset before accept: back off, keep serving.
                TtrpcLog.AcceptFailed(_logger, listener.Address, ex);
                await Task.Delay(100, CancellationToken.None).ConfigureAwait(false);
                continue;
            }

            // Fail closed on Linux, where the kernel always knows the peer; elsewhere (named pipes)
            // there is no uid to compare.
            bool unknownPeer = accepted.Peer is null && OperatingSystem.IsLinux() && accepted.Description.StartsWith("unix", StringComparison.Ordinal);
            if (_options.RequireSameUser && (unknownPeer || (accepted.Peer is { } peer && peer.Uid != ownUid)))
            {
                TtrpcLog.PeerRefused(_logger, accepted.Description, accepted.Peer?.Uid ?? uint.MaxValue, ownUid);
                await accepted.Stream.DisposeAsync().ConfigureAwait(false);
                continue;
            }

            Track(new ServerConnection(accepted.Stream, accepted.Description, _methods, _options, _logger));
        }
    }

    private void Track(ServerConnection connection)
    {
        lock (_gate)
        {
            if (_stopped)
            {
                connection.Abort();
                return;
            }

            // RunAsync yields first and removes itself under _gate, so it cannot finish
            // before it has been added here.
            _connections.Add(connection, RunAsync(connection));
        }
    }

    private async Task RunAsync(ServerConnection connection)
    {
        await Task.Yield();
        try
        {
            await connection.RunAsync().ConfigureAwait(false);
        }
        finally
        {
            lock (_gate)
            {
                _connections.Remove(connection);
            }
        }
    }
}
