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
    /// Serves a named pipe. <paramref name="pipeName"/> may be given with or without
    /// the <c>\\.\pipe\</c> prefix. On Windows the pipe is restricted to the current user
    /// by the platform's default security; on other systems .NET emulates it with a socket.
    /// </summary>
    public static TtrpcListener ListenNamedPipe(string pipeName)
    {
        ArgumentException.ThrowIfNullOrEmpty(pipeName);
        return new NamedPipeListener(TtrpcAddress.StripPipePrefix(pipeName));
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

    private sealed class NamedPipeListener(string pipeName) : TtrpcListener
    {
        private readonly CancellationTokenSource _disposed = new();

        public override string Address => @"\\.\pipe\" + pipeName;

        internal override async ValueTask<AcceptedConnection> AcceptAsync(CancellationToken cancellationToken)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposed.Token);
            var pipe = new NamedPipeServerStream(
                pipeName,
                PipeDirection.InOut,
                NamedPipeServerStream.MaxAllowedServerInstances,
                PipeTransmissionMode.Byte,
                PipeOptions.Asynchronous | CurrentUserOnly());
            try
            {
                await pipe.WaitForConnectionAsync(linked.Token).ConfigureAwait(false);
            }
            catch
            {
                await pipe.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            return new AcceptedConnection(pipe, null, "pipe:" + pipeName);
        }

        public override ValueTask DisposeAsync()
        {
            _disposed.Cancel();
            return ValueTask.CompletedTask;
        }

        // Off Windows, .NET's pipe emulation enforces CurrentUserOnly with the peer's
        // credentials as well, which is what containerd's same-uid rule asks for.
        private static PipeOptions CurrentUserOnly() => PipeOptions.CurrentUserOnly;
    }
}

/// <summary>A connection a listener accepted, with what is known of its peer.</summary>
internal readonly record struct AcceptedConnection(Stream Stream, PeerCredentials? Peer, string Description);
