using System.IO.Pipes;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;

namespace PluggableShim.Plugins.Runhcs.Internal;

/// <summary>
/// Receives one of runhcs's log streams and re-emits each entry through the shim's logger at the
/// entry's level. runhcs dials the address once per process that logs there (the CLI, each
/// shim, the VM shim), so the listener accepts any number of connections until disposed.
/// On Windows the address is a named pipe under <c>\\.\pipe\ProtectedPrefix\Administrators\</c>,
/// which only administrators can create, so no other user can impersonate the shim's log;
/// elsewhere (the stand-in runhcs in tests) a Unix socket.
/// </summary>
/// <remarks>
/// Nothing a writer sends can end the shim: every read and decode failure ends only that
/// connection. Two accept loops run on Windows so that a new pipe instance is always waiting
/// while the other hands its connection off (a client finding no instance would fail at once).
/// </remarks>
internal sealed class LogForwarder : IAsyncDisposable
{
    public const string ProtectedPipePrefix = @"\\.\pipe\ProtectedPrefix\Administrators\";
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(2);

    private readonly string _source;
    private readonly string _containerId;
    private readonly ILogger _logger;
    private readonly LogLevel _minimum;
    private readonly CancellationTokenSource _stop = new();
    private readonly Socket? _socket;
    private readonly string? _socketPath;
    private readonly Lock _gate = new();

    // Guarded by _gate: connections being read, disposed on stop to end their reads.
    private readonly HashSet<Stream> _connections = [];
    private readonly List<Task> _loops = [];

    private LogForwarder(string source, string containerId, string address, ILogger logger, LogLevel minimum, Socket? socket)
    {
        _source = source;
        _containerId = containerId;
        _logger = logger;
        _minimum = minimum;
        _socket = socket;
        _socketPath = socket is null ? null : address;
        Address = address;
    }

    /// <summary>What to hand runhcs (<c>--log</c>, <c>--shim-log</c>, <c>--vm-log</c>).</summary>
    public string Address { get; }

    /// <summary>Starts listening before returning, so runhcs can dial at once.</summary>
    public static LogForwarder Start(
        string source, string ns, string containerId, string? socketDirectory, ILogger logger, LogLevel minimum)
    {
        // Names must be unique per container and stream, and Unix socket paths short (≤ 104 bytes).
        string tag = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{ns}/{containerId}")))[..16];
        if (OperatingSystem.IsWindows())
        {
            string name = $"ProtectedPrefix\\Administrators\\runhcs-{ns}-{containerId}-{source}-log";
            var forwarder = new LogForwarder(source, containerId, @"\\.\pipe\" + name, logger, minimum, socket: null);
            forwarder.StartPipeLoops(name);
            return forwarder;
        }

        string directory = socketDirectory ?? Path.GetTempPath();
        string path = Path.Combine(directory, $"rh-{tag}-{source}.sock");
        File.Delete(path); // a stale socket of a crashed shim for the same container
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(16);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var unix = new LogForwarder(source, containerId, path, logger, minimum, socket);
        unix.Track(unix.AcceptSocketsAsync(socket));
        return unix;
    }

    /// <summary>Re-emits one line (also used for the per-call log files of the CLI).</summary>
    public static void Forward(ILogger logger, LogLevel minimum, string source, string containerId, LogLineReader.Line line)
    {
        RunhcsLogEntry? entry = RunhcsLogEntry.Decode(line.Text);
        if (entry is null || entry.Level < minimum || !logger.IsEnabled(entry.Level))
        {
            return;
        }

        var fields = new List<KeyValuePair<string, object?>>(entry.Fields.Count + 3);
        if (entry.Time is { } time)
        {
            fields.Add(new("runhcsTime", time.ToString("O", System.Globalization.CultureInfo.InvariantCulture)));
        }

        fields.AddRange(entry.Fields);
        if (line.Truncated)
        {
            fields.Add(new("truncated", true));
        }

        if (line.Partial)
        {
            fields.Add(new("partial", true));
        }

        using (logger.BeginScope(fields))
        {
            RunhcsLog.Entry(logger, entry.Level, source, containerId, entry.Message);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        _socket?.Dispose();
        Task[] loops;
        Stream[] connections;
        lock (_gate)
        {
            loops = [.. _loops];
            connections = [.. _connections];
        }

        foreach (Stream connection in connections)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }

        try
        {
            await Task.WhenAll(loops).WaitAsync(StopTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // A read that ignores disposal: the loop holds nothing but a disposed stream.
        }

        if (_socketPath is not null)
        {
            File.Delete(_socketPath);
        }

        _stop.Dispose();
    }

    private void Track(Task loop)
    {
        lock (_gate)
        {
            _loops.RemoveAll(t => t.IsCompleted);
            _loops.Add(loop);
        }
    }

    private async Task AcceptSocketsAsync(Socket listener)
    {
        try
        {
            while (true)
            {
                Socket accepted = await listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
                Track(ReadConnectionAsync(new NetworkStream(accepted, ownsSocket: true)));
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException || _stop.IsCancellationRequested)
        {
            // Stopped.
        }
        catch (Exception ex)
        {
            RunhcsLog.ListenerFailed(_logger, _source, _containerId, ex);
        }
    }

    private void StartPipeLoops(string name)
    {
        // The first instance exists before Start returns: runhcs may dial immediately.
        NamedPipeServerStream first = CreatePipe(name);
        Track(AcceptPipesAsync(name, first));
        Track(AcceptPipesAsync(name, null));
    }

    private static NamedPipeServerStream CreatePipe(string name) =>
        new(name, PipeDirection.In, NamedPipeServerStream.MaxAllowedServerInstances, PipeTransmissionMode.Byte,
            PipeOptions.Asynchronous);

    private async Task AcceptPipesAsync(string name, NamedPipeServerStream? pending)
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                NamedPipeServerStream pipe = pending ?? CreatePipe(name);
                pending = null;
                lock (_gate)
                {
                    _connections.Add(pipe); // so that disposal ends a wait for a connection too
                }

                await pipe.WaitForConnectionAsync(_stop.Token).ConfigureAwait(false);
                Track(ReadConnectionAsync(pipe));
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException || _stop.IsCancellationRequested)
        {
            // Stopped.
        }
        catch (Exception ex)
        {
            RunhcsLog.ListenerFailed(_logger, _source, _containerId, ex);
        }
        finally
        {
            if (pending is not null)
            {
                await pending.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task ReadConnectionAsync(Stream connection)
    {
        lock (_gate)
        {
            _connections.Add(connection);
        }

        try
        {
            await foreach (LogLineReader.Line line in LogLineReader.ReadAsync(connection, _stop.Token).ConfigureAwait(false))
            {
                Forward(_logger, _minimum, _source, _containerId, line);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or IOException or SocketException)
        {
            // The writer went away or we are stopping; either way this connection is done.
        }
        finally
        {
            lock (_gate)
            {
                _connections.Remove(connection);
            }

            await connection.DisposeAsync().ConfigureAwait(false);
            RunhcsLog.LogConnectionEnded(_logger, _source, _containerId);
        }
    }
}
