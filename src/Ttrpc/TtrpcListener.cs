using System.IO.Pipes;
using System.Net.Sockets;
using PluggableShim.Ttrpc.Internal;

namespace PluggableShim.Ttrpc;

/// <summary>
/// A listening endpoint a <see cref="TtrpcServer"/> accepts connections from:
/// a Unix domain socket, or a Windows named pipe.
/// </summary>
public abstract class TtrpcListener : IAsyncDisposable
{
    private protected TtrpcListener()
    {
    }

    /// <summary>The address clients dial, in containerd's notation (<c>unix:///path</c> or <c>\\.\pipe\name</c>).</summary>
    public abstract string Address { get; }

    /// <summary>Binds a Unix domain socket at <paramref name="path"/>. An existing file there is an error.</summary>
    public static TtrpcListener ListenUnix(string path, int backlog = 128)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(backlog);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new UnixListener(socket, path, ownsPath: true);
    }

    /// <summary>
    /// Serves an already bound and listening Unix socket, for instance one inherited
    /// from the process that spawned us. The socket file is left in place on dispose
    /// unless <paramref name="ownsPath"/> is set.
    /// </summary>
    public static TtrpcListener FromListeningSocket(Socket socket, string path, bool ownsPath)
    {
        ArgumentNullException.ThrowIfNull(socket);
        return new UnixListener(socket, path, ownsPath);
    }

    /// <summary>
    /// Serves a named pipe. <paramref name="pipeName"/> may be given with or without the
    /// <c>\\.\pipe\</c> prefix. The first instance is created here, so clients can connect
    /// as soon as this returns, and one instance always waits while connections are served.
    /// </summary>
    /// <param name="pipeName">The pipe's name.</param>
    /// <param name="access">Who may connect; see <see cref="NamedPipeAccess"/>.</param>
    public static TtrpcListener ListenNamedPipe(string pipeName, NamedPipeAccess access = NamedPipeAccess.CurrentUser)
    {
        ArgumentException.ThrowIfNullOrEmpty(pipeName);
        return new NamedPipeListener(TtrpcAddress.StripPipePrefix(pipeName), access);
    }

    internal abstract ValueTask<AcceptedConnection> AcceptAsync(CancellationToken cancellationToken);

    /// <inheritdoc />
    public abstract ValueTask DisposeAsync();

    private sealed class UnixListener(Socket socket, string path, bool ownsPath) : TtrpcListener
    {
        public override string Address => "unix://" + path;

        internal override async ValueTask<AcceptedConnection> AcceptAsync(CancellationToken cancellationToken)
        {
            Socket accepted = await socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
            PeerCredentials? peer;
            try
            {
                peer = PeerCredentials.TryGet(accepted);
            }
            catch (SocketException)
            {
                // The peer is unknown (and refused where the same user is required): never leak the socket.
                peer = null;
            }

            return new AcceptedConnection(new NetworkStream(accepted, ownsSocket: true), peer, Describe(peer));
        }

        public override ValueTask DisposeAsync()
        {
            socket.Dispose();
            if (ownsPath)
            {
                try
                {
                    File.Delete(path);
                }
                catch (IOException)
                {
                    // The socket file may already be gone; nothing is leaked then.
                }
            }

            return ValueTask.CompletedTask;
        }

        private static string Describe(PeerCredentials? peer) =>
            peer is { } p ? $"unix:pid={p.Pid},uid={p.Uid}" : "unix";
    }

    /// <remarks>
    /// A client finding no waiting instance fails or waits (Windows: the pipe does not exist, or
    /// is busy), so the next instance is created before a connected one is handed to the server.
    /// Disposal withdraws the pipe: connections already handed over keep working, no instance
    /// waits for new ones, and <see cref="AcceptAsync"/> waits for the server's own cancellation
    /// rather than fail. Off Windows, .NET's emulation keeps accepting into its socket's backlog
    /// until the last instance closes; a successor's instance takes the name over at once.
    /// </remarks>
    private sealed class NamedPipeListener : TtrpcListener
    {
        private readonly string _pipeName;
        private readonly NamedPipeAccess _access;
        private readonly CancellationTokenSource _disposed = new();
        private readonly Lock _gate = new();

        // Guarded by _gate: the instance waiting for the next client, and whether we are withdrawn.
        private NamedPipeServerStream? _waiting;
        private bool _closed;

        public NamedPipeListener(string pipeName, NamedPipeAccess access)
        {
            _pipeName = pipeName;
            _access = access;
            _waiting = NamedPipeInstances.Create(pipeName, access);
        }

        public override string Address => @"\\.\pipe\" + _pipeName;

        internal override async ValueTask<AcceptedConnection> AcceptAsync(CancellationToken cancellationToken)
        {
            NamedPipeServerStream? pipe;
            bool closed;
            lock (_gate)
            {
                closed = _closed;
                pipe = _waiting;
                _waiting = null;
            }

            if (!closed && pipe is null)
            {
                // Created outside _gate: a slow or failing create must not block DisposeAsync.
                pipe = NamedPipeInstances.Create(_pipeName, _access);
                lock (_gate)
                {
                    closed = _closed;
                }

                if (closed)
                {
                    await pipe.DisposeAsync().ConfigureAwait(false); // withdrawn while we created it
                    pipe = null;
                }
            }

            if (pipe is null)
            {
                await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
            }

            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposed.Token);
            try
            {
                await pipe!.WaitForConnectionAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Withdrawn while waiting: accept nothing more until the server stops.
                await pipe!.DisposeAsync().ConfigureAwait(false);
                await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
                throw;
            }
            catch
            {
                await pipe!.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            try
            {
                PrepareNext();
            }
            catch
            {
                // Whatever failed, the connected instance is ours to close: its client must not hang.
                await pipe!.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            return new AcceptedConnection(pipe!, null, "pipe:" + _pipeName);
        }

        public override ValueTask DisposeAsync()
        {
            NamedPipeServerStream? waiting;
            lock (_gate)
            {
                _closed = true;
                waiting = _waiting;
                _waiting = null;
            }

            _disposed.Cancel();
            waiting?.Dispose();
            return ValueTask.CompletedTask;
        }

        private void PrepareNext()
        {
            lock (_gate)
            {
                if (_closed || _waiting is not null)
                {
                    return;
                }
            }

            // Created outside _gate (only AcceptAsync, one at a time, fills _waiting).
            NamedPipeServerStream next;
            try
            {
                next = NamedPipeInstances.Create(_pipeName, _access);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Out of instances or handles, or (Windows) an ACL conflict with another creator:
                // the next AcceptAsync tries again (and the server backs off). Only reasoned
                // about, not run: these cannot be caused off Windows.
                return;
            }

            lock (_gate)
            {
                if (!_closed && _waiting is null)
                {
                    _waiting = next;
                    return;
                }
            }

            next.Dispose(); // withdrawn meanwhile
        }
    }
}

/// <summary>A connection a listener accepted, with what is known of its peer.</summary>
internal readonly record struct AcceptedConnection(Stream Stream, PeerCredentials? Peer, string Description);
