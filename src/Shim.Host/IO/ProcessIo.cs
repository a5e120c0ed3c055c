using System.Diagnostics;
using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;
using PluggableShim.Host.IO.Internal;

namespace PluggableShim.Host.IO;

/// <summary>
/// Relays one process's standard streams between what the client asked for (FIFOs, files, a
/// logging program) and the streams the plugin hands back when the process starts.
/// </summary>
/// <remarks>
/// Targets: stdin is a FIFO or nothing. Output is an absolute path (a FIFO the client created,
/// else a file appended to), <c>file:///path</c> (both streams appended to one file) or
/// <c>binary:///path?k=v</c> (a <see cref="LoggingProgram"/>). Bad strings fail Create with
/// InvalidArgument before anything is opened.
///
/// Order matters with containerd's clients: they open their FIFO ends before Create, so our
/// ends are opened in Create (<see cref="OpenAsync"/>) and a client that never opens its end
/// fails Create after a bounded wait instead of hanging it; a logging program is started and
/// awaited there too, for the same reason. Each stream gets its own relay thread; FIFO waits
/// wake on cancellation, so disposal always ends them.
///
/// Output relays run until the process's pipe reports end of stream. A target that fails (a
/// logging program that died, a full disk) is dropped and the relay keeps reading, so the process
/// never blocks because of it. A FIFO whose client went away does not fail: our keep-alive reader
/// holds it open (so a reconnecting client finds the stream), and when it fills, the relay — and
/// then the process — waits, as with containerd's own shim, until Delete ends the relay. At that end both sides of the copy close: the process's pipe, and our writing end
/// (a shared file closes when its second stream ends), so a client or logging program sees EOF
/// as soon as the output is over. <see cref="OutputDrained"/> completes after that, and after a
/// logging program has exited, so the exit is published once the output is out, and logged.
/// Closing stdin (CloseIO, or the client closing its FIFO end) closes the process's stdin only;
/// its output keeps flowing.
/// </remarks>
internal sealed class ProcessIo : IAsyncDisposable
{
    private readonly ILogger _logger;
    private readonly FileDescriptor? _stdin;
    private readonly Stream? _stdinPipe;
    private readonly OutputSink? _stdout;
    private readonly OutputSink? _stderr;
    private readonly LoggingProgram? _program;
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _stdinClosed = new();
    private readonly Lock _gate = new();

    // What CloseIO still forwards from the FIFO before closing the process's stdin.
    private const int MaxStdinDrain = 1 << 20;

    // Guarded by _gate.
    private Stream? _processStdin;
    private bool _stdinDone;
    private bool _stdinRelayOwnsStream;

    // Set once by Attach, before any relay runs; read by DisposeAsync after it.
    private Task _relaysDone = Task.CompletedTask;
    private Task _outputDrained = Task.CompletedTask;
    private Task _stdinRelay = Task.CompletedTask;

    private ProcessIo(ILogger logger, FileDescriptor? stdin, Stream? stdinPipe, OutputSink? stdout, OutputSink? stderr, LoggingProgram? program)
    {
        _logger = logger;
        _stdin = stdin;
        _stdinPipe = stdinPipe;
        _stdout = stdout;
        _stderr = stderr;
        _program = program;
    }

    /// <summary>
    /// Completes once every output stream of the started process has reached its end and been
    /// written out, and a logging program, if any, has exited (or been stopped, bounded).
    /// </summary>
    public Task OutputDrained => _outputDrained;

    /// <summary>Opens the process's IO as the client asked; nothing stays open when this fails.</summary>
    /// <exception cref="InvalidArgumentException">A path or URI the shim cannot use.</exception>
    /// <exception cref="FailedPreconditionException">A FIFO, file or logging program that cannot be opened in time.</exception>
    public static async Task<ProcessIo> OpenAsync(
        StdioPaths paths,
        IoContext context,
        ILogger logger,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(context);
        OutputPlan plan = OutputPlan.Parse(paths.Stdout, paths.Stderr, paths.Terminal);
        bool stdinPipe = ClientPipes.IsPipe(paths.Stdin);
        if (paths.Stdin.Length > 0 && !stdinPipe && (!paths.Stdin.StartsWith('/') || !FifoEndpoints.IsFifo(paths.Stdin)))
        {
            throw new InvalidArgumentException($"stdin \"{paths.Stdin}\" must be the absolute path of a FIFO, or a named pipe");
        }

        OutputSink? stdout = null;
        OutputSink? stderr = null;
        LoggingProgram? program = null;
        FileDescriptor? stdin = null;
        Stream? stdinStream = null;
        try
        {
            switch (plan.Stdout)
            {
                case OutputTarget.BinaryTarget binary:
                    program = await LoggingProgram.StartAsync(binary, context, logger, cancellationToken).ConfigureAwait(false);
                    stdout = program.Stdout;
                    stderr = program.Stderr;
                    if (plan.Stderr is null)
                    {
                        program.Stderr.Release(); // terminal mode: fd 4 sees EOF at once
                        stderr = null;
                    }

                    break;

                case OutputTarget.FileTarget file:
                    stdout = OpenFile(file.Path, createFolders: true, users: plan.Shared ? 2 : 1);
                    stderr = plan.Shared ? stdout : null;
                    break;

                case OutputTarget.PathTarget path when plan.Stderr is OutputTarget.PathTarget other
                    && other.Path == path.Path && !ClientPipes.IsPipe(path.Path) && !FifoEndpoints.IsFifo(path.Path):
                    // One file for both streams (`ctr run --log-uri /path` sends it as both): one descriptor.
                    stdout = OpenFile(path.Path, createFolders: false, users: 2);
                    stderr = stdout;
                    break;

                default:
                    stdout = await OpenPathAsync(plan.Stdout, context.OpenTimeout, cancellationToken).ConfigureAwait(false);
                    stderr = await OpenPathAsync(plan.Stderr, context.OpenTimeout, cancellationToken).ConfigureAwait(false);
                    break;
            }

            if (stdinPipe)
            {
                stdinStream = await ClientPipes.DialAsync(paths.Stdin, System.IO.Pipes.PipeDirection.In, context.OpenTimeout, cancellationToken)
                    .ConfigureAwait(false);
            }
            else if (paths.Stdin.Length > 0)
            {
                stdin = FifoEndpoints.OpenReader(paths.Stdin);
            }

            return new ProcessIo(logger, stdin, stdinStream, stdout, stderr, program);
        }
        catch (Exception ex)
        {
            stdout?.Dispose();
            stderr?.Dispose();
            stdin?.Dispose();
            stdinStream?.Dispose();
            if (program is not null)
            {
                await program.StopAsync(hurry: true).ConfigureAwait(false);
            }

            if (ex is TimeoutException or IOException or UnauthorizedAccessException)
            {
                throw new FailedPreconditionException("cannot open the process's IO: " + ex.Message);
            }

            throw;
        }
    }

    /// <summary>Starts relaying between the client's streams and the started process.</summary>
    public void Attach(StartedProcess process)
    {
        ArgumentNullException.ThrowIfNull(process);
        Task stdout = RelayOutputAsync(process.Stdout, _stdout, "stdout");
        Task stderr = RelayOutputAsync(process.Stderr, _stderr, "stderr");
        _relaysDone = Task.WhenAll(stdout, stderr);
        _outputDrained = _program is null ? _relaysDone : StopProgramAfterAsync(_relaysDone, _program);

        FileDescriptor? fifo = _stdin;
        Stream? processStdin = process.Stdin;
        bool relay = (fifo is not null || _stdinPipe is not null) && processStdin is not null;
        lock (_gate)
        {
            _processStdin = processStdin;
            _stdinRelayOwnsStream = relay && !_stdinDone;
        }

        if (_stdinPipe is { } pipe && processStdin is not null)
        {
            _stdinRelay = Task.Factory.StartNew(
                () => RelayStdinPipe(pipe, processStdin),
                CancellationToken.None,
                TaskCreationOptions.LongRunning,
                TaskScheduler.Default);
            return;
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
            await _relaysDone.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // A descendant still holds the process's pipe; its relay ends when it does and drops the rest.
            IoLog.OutputStillOpen(_logger);
        }

        _stdin?.Dispose();
        _stdinPipe?.Dispose();
        _stdout?.Dispose();
        _stderr?.Dispose();
        if (_program is not null)
        {
            // Bounded: the rest of its exit grace is skipped, then SIGTERM and SIGKILL each get a bounded wait.
            await _program.StopAsync(hurry: true).ConfigureAwait(false);
        }
    }

    private static async Task StopProgramAfterAsync(Task relays, LoggingProgram program)
    {
        await relays.ConfigureAwait(false);
        await program.StopAsync(hurry: false).ConfigureAwait(false);
    }

    private Task RelayOutputAsync(Stream? source, OutputSink? target, string name)
    {
        if (source is null)
        {
            target?.Release();
            return Task.CompletedTask;
        }

        return Task.Factory.StartNew(
            () =>
            {
                byte[] buffer = new byte[32 * 1024];
                OutputSink? sink = target;
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
                    // Both sides: the process's pipe, and ours, so the reader sees EOF now.
                    source.Dispose();
                    target?.Release();
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
            StdinFinished(destination);
        }
    }

    /// <summary>The stdin relay is over, however it ended: the process's stdin is closed.</summary>
    private void StdinFinished(Stream destination)
    {
        lock (_gate)
        {
            _stdinDone = true;
            _processStdin = null;
        }

        _stdinClosed.Cancel();
        CloseQuietly(destination);
    }

    // A client's named pipe (Windows). CloseIO forwards nothing still in the pipe: unlike a FIFO,
    // what is available cannot be read without the chance of blocking.
    private void RelayStdinPipe(Stream pipe, Stream destination)
    {
        byte[] buffer = new byte[32 * 1024];
        using var both = CancellationTokenSource.CreateLinkedTokenSource(_stdinClosed.Token, _stopping.Token);
        try
        {
            int n;
            while ((n = pipe.ReadAsync(buffer, both.Token).AsTask().GetAwaiter().GetResult()) > 0)
            {
                destination.Write(buffer, 0, n);
                destination.Flush();
            }
        }
        catch (OperationCanceledException)
        {
            // CloseIO or disposal.
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            IoLog.StdinFailed(_logger, ex.Message);
        }
        finally
        {
            StdinFinished(destination);
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

    private static async Task<OutputSink?> OpenPathAsync(
        OutputTarget? target, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (target is not OutputTarget.PathTarget { Path: var path })
        {
            Debug.Assert(target is null, "file:// and binary:// are handled by the caller");
            return null;
        }

        if (ClientPipes.IsPipe(path))
        {
            return new ClientPipeSink(await ClientPipes.DialAsync(path, System.IO.Pipes.PipeDirection.Out, timeout, cancellationToken)
                .ConfigureAwait(false));
        }

        if (FifoEndpoints.IsFifo(path))
        {
            (FileDescriptor writer, FileDescriptor keepAlive) =
                await FifoEndpoints.OpenWriterAsync(path, timeout, cancellationToken).ConfigureAwait(false);
            return new FifoSink(writer, keepAlive);
        }

        // Not a FIFO: a plain file, appended to (created if missing, as before; its folder must exist).
        return OpenFile(path, createFolders: false, users: 1);
    }

    private static AppendFileSink OpenFile(string path, bool createFolders, int users)
    {
        if (createFolders && Path.GetDirectoryName(path) is { Length: > 0 } folder)
        {
            Directory.CreateDirectory(folder);
        }

        return AppendFileSink.Open(path, users);
    }
}
