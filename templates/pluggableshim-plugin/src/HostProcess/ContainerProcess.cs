using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using PluggableShim.Abstractions;

namespace HostProcess;

/// <summary>
/// A container's process: a host process started on Start, its stdio relayed by the host.
/// Spawning happens outside <c>_gate</c> (no lock across a blocking call): <c>_starting</c> claims
/// the start under the lock, and a signal that arrives meanwhile is kept and sent once the pid is known.
/// </summary>
/// <param name="info">What to run.</param>
/// <param name="container">Every process of the container, for Kill with all.</param>
internal sealed partial class ContainerProcess(ProcessStartInfo info, Func<ContainerProcess[]> container) : IRuntimeProcess, IDisposable
{
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource<ProcessExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Process? _process; // guarded by _gate
    private int _pid; // guarded by _gate
    private bool _starting; // guarded by _gate
    private int _pendingSignal; // guarded by _gate: sent while _starting
    private bool _disposed; // guarded by _gate

    public int Pid
    {
        get
        {
            lock (_gate)
            {
                return _pid;
            }
        }
    }

    public Task<ProcessExit> Exited => _exited.Task;

    public Task<StartedProcess> StartAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_exited.Task.IsCompleted)
            {
                throw new FailedPreconditionException("the process was killed before it started");
            }

            if (_starting || _process is not null)
            {
                throw new FailedPreconditionException("the process was started already");
            }

            _starting = true;
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        // .NET reports a signalled child as 128 + signal, which is what containerd expects.
        process.Exited += (_, _) => _exited.TrySetResult(new ProcessExit(process.ExitCode, DateTimeOffset.UtcNow));
        try
        {
            process.Start(); // fork and exec: outside the lock
        }
        catch (Win32Exception ex)
        {
            process.Dispose();
            int signal;
            lock (_gate)
            {
                _starting = false;
                signal = _pendingSignal;
            }

            if (signal != 0)
            {
                // Killed while it failed to start: it ends as the signal says.
                _exited.TrySetResult(new ProcessExit(128 + signal, DateTimeOffset.UtcNow));
            }

            throw new InvalidArgumentException($"cannot run {info.FileName}: {ex.Message}", ex);
        }

        int pending;
        lock (_gate)
        {
            _process = process;
            _pid = process.Id;
            _starting = false;
            pending = _pendingSignal;
        }

        if (pending != 0)
        {
            _ = Kill(process.Id, pending);
        }

        return Task.FromResult(new StartedProcess(
            process.Id, process.StandardInput.BaseStream, process.StandardOutput.BaseStream, process.StandardError.BaseStream));
    }

    public Task SignalAsync(int signal, bool all, CancellationToken cancellationToken = default)
    {
        if (all)
        {
            foreach (ContainerProcess process in container())
            {
                process.Signal(signal, quiet: true);
            }

            return Task.CompletedTask;
        }

        Signal(signal, quiet: false);
        return Task.CompletedTask;
    }

    public void KillQuietly() => Signal(9, quiet: true);

    /// <summary>Releases the process handle (and the host's ends of its pipes, already closed by then).</summary>
    public void Dispose()
    {
        Process? process;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            process = _process;
            _process = null;
        }

        process?.Dispose();
    }

    private void Signal(int signal, bool quiet)
    {
        int pid;
        lock (_gate)
        {
            if (_starting)
            {
                // Being spawned: StartAsync sends it once the pid is known.
                _pendingSignal = signal;
                return;
            }

            if (_process is null)
            {
                if (!_disposed)
                {
                    // Never started: it ends now, as if the signal had killed it.
                    _exited.TrySetResult(new ProcessExit(128 + signal, DateTimeOffset.UtcNow));
                    return;
                }

                pid = 0; // released: it exited long ago
            }
            else
            {
                pid = _process.HasExited ? 0 : _process.Id;
            }
        }

        if ((pid == 0 || Kill(pid, signal) != 0) && !quiet)
        {
            throw new NotFoundException("the process has exited");
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
