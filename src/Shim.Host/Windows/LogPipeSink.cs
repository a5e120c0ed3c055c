using System.IO.Pipes;

namespace PluggableShim.Host.Windows;

/// <summary>
/// The shim's own log on Windows: a pipe it serves (<c>\\.\pipe\containerd-shim-NS-ID-log</c>)
/// that containerd dials after start and reads into its log. A write-only stream for
/// <see cref="Logging.BundleLogSinks"/>.
/// </summary>
/// <remarks>
/// Lines written before containerd connects are kept (up to <see cref="MaxPending"/> bytes) and
/// sent when it does. A second instance always waits for a reader, so that containerd re-dialling
/// after a restart connects at once even though the old reader's departure is noticed only when a
/// write fails; the newest reader replaces the old one. A write never fails and never blocks:
/// <see cref="Write(ReadOnlySpan{byte})"/> only queues, and one loop writes the queue to the pipe
/// outside the lock, so a reader that stops reading stalls no logger (past the cap, lines are
/// dropped). Off Windows this runs over .NET's pipe emulation (tests); Windows' pipe security for
/// it was never run.
/// </remarks>
internal sealed class LogPipeSink : Stream
{
    private const int MaxPending = 64 * 1024;
    private static readonly TimeSpan DrainOnDispose = TimeSpan.FromSeconds(1);
    private readonly string _name;
    private readonly CancellationTokenSource _closed = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Lock _gate = new();
    private readonly Task _acceptLoop;
    private readonly Task _writeLoop;

    // Guarded by _gate: the current reader, the bytes not yet written to it, whether _wake is
    // released for them already, and whether the write loop holds bytes it is writing.
    private NamedPipeServerStream? _client;
    private MemoryStream _pending = new();
    private bool _woken;
    private bool _writing;

    private LogPipeSink(string name)
    {
        _name = name;
        _acceptLoop = Task.Run(AcceptLoopAsync);
        _writeLoop = Task.Run(WriteLoopAsync);
        // The daemon exits without disposing its last sink; off Windows the emulated pipe is a
        // socket file, removed only when the instance is disposed.
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    /// <summary>Starts serving the log pipe <paramref name="name"/>.</summary>
    public static LogPipeSink Serve(string name) => new(name);

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        lock (_gate)
        {
            if (_pending.Length + buffer.Length > MaxPending)
            {
                return; // no reader, or one that does not read: the line is dropped
            }

            _pending.Write(buffer);
            if (!WakeWriterLocked())
            {
                return;
            }
        }

        _wake.Release();
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && !_closed.IsCancellationRequested)
        {
            AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
            // The daemon's last lines (why it exits) are worth a short wait for a reader that reads.
            DateTime deadline = DateTime.UtcNow + DrainOnDispose;
            while (DateTime.UtcNow < deadline && !Drained())
            {
                Thread.Sleep(20);
            }

            _closed.Cancel();
            NamedPipeServerStream? client;
            lock (_gate)
            {
                client = _client;
                _client = null;
            }

            client?.Dispose();
            _ = Task.WaitAll([_acceptLoop, _writeLoop], TimeSpan.FromSeconds(2));
        }

        base.Dispose(disposing);
    }

    private bool Drained()
    {
        lock (_gate)
        {
            return _client is null || (_pending.Length == 0 && !_writing);
        }
    }

    // Whether the caller must release _wake: there is a reader, something to send, and the
    // write loop was not woken for it yet.
    private bool WakeWriterLocked()
    {
        if (_client is null || _pending.Length == 0 || _woken)
        {
            return false;
        }

        _woken = true;
        return true;
    }

    private void OnProcessExit(object? sender, EventArgs e) => Dispose();

    private async Task AcceptLoopAsync()
    {
        while (!_closed.IsCancellationRequested)
        {
            NamedPipeServerStream? pipe = null;
            try
            {
                // Two instances: the reader's, and this one waiting for the next reader.
                pipe = new NamedPipeServerStream(
                    _name, PipeDirection.Out, 2, PipeTransmissionMode.Byte, PipeOptions.Asynchronous | PipeOptions.CurrentUserOnly);
                await pipe.WaitForConnectionAsync(_closed.Token).ConfigureAwait(false);
                NamedPipeServerStream? replaced;
                bool wake;
                lock (_gate)
                {
                    replaced = _client;
                    _client = pipe;
                    wake = WakeWriterLocked();
                }

                pipe = null;
                // A write under way to the old reader fails, and its bytes go to the new one.
                replaced?.Dispose();
                if (wake)
                {
                    _wake.Release();
                }
            }
            catch (OperationCanceledException)
            {
                pipe?.Dispose();
                return;
            }
            catch (IOException)
            {
                // The name is busy (a predecessor's instances): wait and serve again.
                pipe?.Dispose();
                await Task.Delay(200, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private async Task WriteLoopAsync()
    {
        while (true)
        {
            try
            {
                await _wake.WaitAsync(_closed.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            NamedPipeServerStream? client;
            MemoryStream chunk;
            lock (_gate)
            {
                _woken = false;
                client = _client;
                if (client is null || _pending.Length == 0)
                {
                    continue;
                }

                chunk = _pending;
                _pending = new MemoryStream();
                _writing = true;
            }

            bool sent = false;
            try
            {
                await client.WriteAsync(chunk.GetBuffer().AsMemory(0, (int)chunk.Length), _closed.Token).ConfigureAwait(false);
                sent = true;
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException)
            {
                // The reader went away (or we close): keep these lines for the next reader.
            }

            bool wake;
            lock (_gate)
            {
                _writing = false;
                if (!sent)
                {
                    if (_client == client)
                    {
                        _client = null;
                    }

                    Requeue(chunk);
                }

                wake = WakeWriterLocked();
            }

            if (!sent)
            {
                await client.DisposeAsync().ConfigureAwait(false);
            }

            if (wake)
            {
                _wake.Release();
            }
        }
    }

    // Under _gate: the unsent chunk goes back before what was queued meanwhile, within the cap.
    private void Requeue(MemoryStream chunk)
    {
        long room = MaxPending - chunk.Length;
        if (room < 0)
        {
            return;
        }

        byte[] later = _pending.ToArray();
        _pending = chunk;
        _pending.Position = chunk.Length;
        _pending.Write(later, 0, (int)Math.Min(room, later.Length));
    }
}
