using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;
using PluggableShim.Host.IO.Internal;

namespace PluggableShim.Host.IO;

/// <summary>
/// Relays one process's standard streams between the client's FIFOs (or files) and the
/// streams the plugin hands back when the process starts.
/// </summary>
/// <remarks>
/// Order matters with containerd's clients: they open their FIFO ends before Create, so our
/// ends are opened in Create (<see cref="OpenAsync"/>) and a client that never opens its end
/// fails Create after a bounded wait instead of hanging it. Each stream gets its own relay
/// thread; FIFO waits poll in short slices so disposal always ends them.
///
/// Output relays run until the process's pipe reports end of stream, even when the client has
/// gone (the data is then dropped) — a process must never block on a full pipe because nobody
/// reads. <see cref="OutputDrained"/> lets the exit be published only after the output is out.
/// Closing stdin (CloseIO, or the client closing its FIFO end) closes the process's stdin only;
/// its output keeps flowing.
/// </remarks>
internal sealed class ProcessIo : IAsyncDisposable
{
    private readonly StdioPaths _paths;
    private readonly ILogger _logger;
    private readonly FileDescriptor? _stdin;
    private readonly IOutput? _stdout;
    private readonly IOutput? _stderr;
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _stdinClosed = new();
    private readonly Lock _gate = new();

    // What CloseIO still forwards from the FIFO before closing the process's stdin.
    private const int MaxStdinDrain = 1 << 20;

    // Guarded by _gate.
    private Stream? _processStdin;
    private bool _stdinDone;
    private bool _stdinRelayOwnsStream;

    private Task _outputDrained = Task.CompletedTask;
    private Task _stdinRelay = Task.CompletedTask;

    private ProcessIo(StdioPaths paths, ILogger logger, FileDescriptor? stdin, IOutput? stdout, IOutput? stderr)
    {
        _paths = paths;
        _logger = logger;
        _stdin = stdin;
        _stdout = stdout;
        _stderr = stderr;
    }

    /// <summary>Completes once every output stream of the started process has reached its end.</summary>
    public Task OutputDrained => _outputDrained;

    public static async Task<ProcessIo> OpenAsync(
        StdioPaths paths,
        TimeSpan openTimeout,
        ILogger logger,
        CancellationToken cancellationToken)
    {
        IOutput? stdout = null;
        IOutput? stderr = null;
        FileDescriptor? stdin = null;
        try
        {
            stdout = await OpenOutputAsync(paths.Stdout, "stdout", openTimeout, cancellationToken).ConfigureAwait(false);
            if (!paths.Terminal)
            {
                stderr = await OpenOutputAsync(paths.Stderr, "stderr", openTimeout, cancellationToken).ConfigureAwait(false);
            }

            if (paths.Stdin.Length > 0)
            {
                stdin = FifoEndpoints.IsFifo(paths.Stdin)
                    ? FifoEndpoints.OpenReader(paths.Stdin)
                    : throw new InvalidArgumentException($"stdin {paths.Stdin} is not a FIFO");
            }

            return new ProcessIo(paths, logger, stdin, stdout, stderr);
        }
        catch (Exception ex)
        {
            stdout?.Dispose();
            stderr?.Dispose();
            stdin?.Dispose();
            if (ex is TimeoutException or IOException)
            {
                throw new FailedPreconditionException("cannot open the process's IO: " + ex.Message);
            }

            throw;
        }
    }

    /// <summary>Starts relaying between the client's streams and the started process.</summary>
    public void Attach(StartedProcess process)
    {
        Task stdout = RelayOutputAsync(process.Stdout, _stdout, "stdout");
        Task stderr = RelayOutputAsync(process.Stderr, _paths.Terminal ? null : _stderr, "stderr");
        _outputDrained = Task.WhenAll(stdout, stderr);

        FileDescriptor? fifo = _stdin;
        Stream? processStdin = process.Stdin;
        bool relay = fifo is not null && processStdin is not null;
        lock (_gate)
        {
            _processStdin = processStdin;
            _stdinRelayOwnsStream = relay && !_stdinDone;
        }

        if (fifo is null || processStdin is null)
        {
            CloseStdin();
            return;
        }

        _stdinRelay = Task.Factory.StartNew(
            () => RelayStdin(fifo, processStdin),
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);
    }

    /// <summary>
    /// Gives the process end-of-file on stdin, after forwarding what the client already
    /// wrote into the FIFO (a client closes right after its last write). Idempotent; output
    /// is unaffected.
    /// </summary>
    public void CloseStdin()
    {
        Stream? stream = null;
        lock (_gate)
        {
            if (_stdinDone)
            {
                return;
            }

            _stdinDone = true;
            if (!_stdinRelayOwnsStream)
            {
                stream = _processStdin;
                _processStdin = null;
            }
        }

        // A running relay drains the FIFO and closes the process's stdin itself.
        _stdinClosed.Cancel();
        CloseQuietly(stream);
    }

    private static void CloseQuietly(Stream? stream)
    {
        try
        {
            stream?.Dispose();
        }
        catch (IOException)
        {
            // The process already closed its end; EOF is what it has either way.
        }
    }

    public async ValueTask DisposeAsync()
    {
        CloseStdin();
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await _stdinRelay.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // The process stopped reading with its stdin pipe full; the relay ends when it exits.
            IoLog.StdinFailed(_logger, "stdin relay still blocked on a full pipe at close");
        }

        try
        {
            await _outputDrained.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // A descendant still holds the process's pipe; its relay ends when it does.
            IoLog.OutputStillOpen(_logger);
        }

        _stdin?.Dispose();
        _stdout?.Dispose();
        _stderr?.Dispose();
    }

    private Task RelayOutputAsync(Stream? source, IOutput? target, string name)
    {
        if (source is null)
        {
            return Task.CompletedTask;
        }

        return Task.Factory.StartNew(
            () =>
            {
                byte[] buffer = new byte[32 * 1024];
                IOutput? sink = target;
                try
                {
                    int n;
                    while ((n = source.Read(buffer)) > 0)
                    {
                        if (sink is null)
                        {
                            continue;
                        }

                        try
                        {
                            sink.Write(buffer.AsSpan(0, n), _stopping.Token);
                        }
                        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
                        {
                            // Keep reading so the process never blocks on a full pipe; the rest is dropped.
                            IoLog.OutputDropped(_logger, name, ex.Message);
                            sink = null;
                        }
                    }
                }
                catch (IOException ex)
                {
                    IoLog.OutputDropped(_logger, name, ex.Message);
                }
                finally
                {
                    source.Dispose();
                }
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);
    }

    private void RelayStdin(FileDescriptor fifo, Stream destination)
    {
        byte[] buffer = new byte[32 * 1024];
        using var both = CancellationTokenSource.CreateLinkedTokenSource(_stdinClosed.Token, _stopping.Token);
        try
        {
            int n;
            while ((n = FifoEndpoints.Read(fifo, buffer, both.Token)) > 0)
            {
                destination.Write(buffer, 0, n);
                destination.Flush();
            }
        }
        catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
        {
            // CloseIO: what the client wrote before closing still goes through.
            Drain(fifo, destination, buffer);
        }
        catch (OperationCanceledException)
        {
            // Disposal: nobody waits for the rest.
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            IoLog.StdinFailed(_logger, ex.Message);
        }
        finally
        {
            lock (_gate)
            {
                _stdinDone = true;
                _processStdin = null;
            }

            _stdinClosed.Cancel();
            CloseQuietly(destination);
        }
    }

    private void Drain(FileDescriptor fifo, Stream destination, byte[] buffer)
    {
        try
        {
            int total = 0, n;
            while (total < MaxStdinDrain && (n = FifoEndpoints.ReadAvailable(fifo, buffer)) > 0)
            {
                destination.Write(buffer, 0, n);
                total += n;
            }

            destination.Flush();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            IoLog.StdinFailed(_logger, ex.Message);
        }
    }

    private static async Task<IOutput?> OpenOutputAsync(
        string path, string name, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (path.Length == 0)
        {
            return null;
        }

        if (!Path.IsPathFullyQualified(path))
        {
            throw new InvalidArgumentException($"{name} path {path} is not absolute");
        }

        if (FifoEndpoints.IsFifo(path))
        {
            (FileDescriptor writer, FileDescriptor keepAlive) =
                await FifoEndpoints.OpenWriterAsync(path, timeout, cancellationToken).ConfigureAwait(false);
            return new FifoOutput(writer, keepAlive);
        }

        // Not a FIFO: a plain file, appended to.
        return new FileOutput(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite));
    }

    private interface IOutput : IDisposable
    {
        void Write(ReadOnlySpan<byte> data, CancellationToken cancellationToken);
    }

    private sealed class FifoOutput(FileDescriptor writer, FileDescriptor keepAlive) : IOutput
    {
        public void Write(ReadOnlySpan<byte> data, CancellationToken cancellationToken) =>
            FifoEndpoints.WriteAll(writer, data, cancellationToken);

        public void Dispose()
        {
            writer.Dispose();
            keepAlive.Dispose();
        }
    }

    private sealed class FileOutput(FileStream file) : IOutput
    {
        public void Write(ReadOnlySpan<byte> data, CancellationToken cancellationToken)
        {
            file.Write(data);
            file.Flush();
        }

        public void Dispose() => file.Dispose();
    }
}
