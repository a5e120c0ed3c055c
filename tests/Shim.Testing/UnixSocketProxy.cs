using System.Net.Sockets;

namespace PluggableShim.Testing;

/// <summary>
/// A Unix socket that forwards every connection to another one, and can be taken down (its
/// socket file removed, every forwarded connection cut) and brought back: a peer that goes
/// away and returns, as containerd does when it restarts, without restarting it.
/// </summary>
public sealed class UnixSocketProxy : IAsyncDisposable
{
    private readonly string _target;
    private readonly Lock _gate = new();
    private Socket? _listener; // guarded by _gate
    private readonly List<Socket> _open = []; // guarded by _gate

    public UnixSocketProxy(string path, string target)
    {
        Path = path;
        _target = target;
    }

    public string Path { get; }

    public void Up()
    {
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(Path));
        listener.Listen(64);
        lock (_gate)
        {
            _listener = listener;
        }

        _ = Task.Run(() => AcceptLoopAsync(listener));
    }

    /// <summary>Removes the socket and cuts every forwarded connection.</summary>
    public void Down()
    {
        Socket? listener;
        Socket[] open;
        lock (_gate)
        {
            listener = _listener;
            _listener = null;
            open = [.. _open];
            _open.Clear();
        }

        listener?.Dispose();
        File.Delete(Path);
        foreach (Socket socket in open)
        {
            socket.Dispose();
        }
    }

    public ValueTask DisposeAsync()
    {
        Down();
        return ValueTask.CompletedTask;
    }

    private async Task AcceptLoopAsync(Socket listener)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return;
            }

            var upstream = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await upstream.ConnectAsync(new UnixDomainSocketEndPoint(_target)).ConfigureAwait(false);
            }
            catch (SocketException)
            {
                client.Dispose();
                upstream.Dispose();
                continue;
            }

            lock (_gate)
            {
                _open.Add(client);
                _open.Add(upstream);
            }

            _ = PumpAsync(client, upstream);
            _ = PumpAsync(upstream, client);
        }
    }

    private static async Task PumpAsync(Socket from, Socket to)
    {
        byte[] buffer = new byte[16 * 1024];
        try
        {
            int n;
            while ((n = await from.ReceiveAsync(buffer).ConfigureAwait(false)) > 0)
            {
                await to.SendAsync(buffer.AsMemory(0, n)).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Cut by Down, or the other side went.
        }
        finally
        {
            // When one side ends, end both.
            from.Dispose();
            to.Dispose();
        }
    }
}
