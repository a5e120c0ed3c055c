using System.IO.Pipes;

namespace PluggableShim.Host.Windows;

/// <summary>
/// The shim's own log on Windows: a pipe it serves (<c>\\.\pipe\containerd-shim-NS-ID-log</c>)
/// that containerd dials after start and reads into its log. A write-only stream for
/// <see cref="Logging.BundleLogSinks"/>.
/// </summary>
/// <remarks>
/// Lines written before containerd connects are kept (up to <see cref="MaxPending"/> bytes) and
/// sent when it does; when containerd goes away (a restart), lines are kept again until it
/// reconnects. A write never fails, so the sink stays in place. Off Windows this runs over .NET's
/// pipe emulation (tests); Windows' pipe security for it was never run.
/// </remarks>
internal sealed class LogPipeSink : Stream
{
    private const int MaxPending = 64 * 1024;
    private readonly string _name;
    private readonly CancellationTokenSource _closed = new();
    private readonly Lock _gate = new();
    private readonly Task _acceptLoop;

    // Guarded by _gate.
    private NamedPipeServerStream? _client;
    private readonly MemoryStream _pending = new();

    private LogPipeSink(string name)
    {
        _name = name;
        _acceptLoop = Task.Run(AcceptLoopAsync);
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
            if (_client is { } client)
            {
                try
                {
                    client.Write(buffer);
                    return;
                }
                catch (IOException)
                {
                    // containerd went away: keep this line for the next reader.
                    client.Dispose();
                    _client = null;
                }
            }

            if (_pending.Length + buffer.Length <= MaxPending)
            {
                _pending.Write(buffer);
            }
        }
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
            _closed.Cancel();
            lock (_gate)
            {
                _client?.Dispose();
                _client = null;
            }

            _ = _acceptLoop.Wait(TimeSpan.FromSeconds(2));
        }

        base.Dispose(disposing);
    }

    private void OnProcessExit(object? sender, EventArgs e) => Dispose();

    private async Task AcceptLoopAsync()
    {
        while (!_closed.IsCancellationRequested)
        {
            try
            {
                using var pipe = new NamedPipeServerStream(
                    _name, PipeDirection.Out, 1, PipeTransmissionMode.Byte, PipeOptions.Asynchronous | PipeOptions.CurrentUserOnly);
                await pipe.WaitForConnectionAsync(_closed.Token).ConfigureAwait(false);
                lock (_gate)
                {
                    pipe.Write(_pending.GetBuffer().AsSpan(0, (int)_pending.Length));
                    _pending.SetLength(0);
                    _client = pipe;
                }

                // Serve this reader until it goes (a write fails) or we close.
                while (!_closed.IsCancellationRequested)
                {
                    lock (_gate)
                    {
                        if (_client != pipe)
                        {
                            break;
                        }
                    }

                    await Task.Delay(200, _closed.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (IOException)
            {
                // The reader left while being caught up, or the name is busy: wait and serve again.
                await Task.Delay(200, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }
}
