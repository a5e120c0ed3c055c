using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using PluggableShim.Abstractions;

namespace HostProcess;

/// <summary>A container's process: a host process started on Start, its stdio relayed by the host.</summary>
/// <param name="info">What to run.</param>
/// <param name="container">Every process of the container, for Kill with all.</param>
internal sealed partial class ContainerProcess(ProcessStartInfo info, Func<ContainerProcess[]> container) : IRuntimeProcess
{
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource<ProcessExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Process? _process; // guarded by _gate

    public int Pid
    {
        get
        {
            lock (_gate)
            {
                return _process?.Id ?? 0;
            }
        }
    }

    public Task<ProcessExit> Exited => _exited.Task;

    public Task<StartedProcess> StartAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_exited.Task.IsCompleted)
            {
                throw new FailedPreconditionException("the process was killed before it started");
            }

            var process = new Process { StartInfo = info, EnableRaisingEvents = true };
            // .NET reports a signalled child as 128 + signal, which is what containerd expects.
            process.Exited += (_, _) => _exited.TrySetResult(new ProcessExit(process.ExitCode, DateTimeOffset.UtcNow));
            try
            {
                process.Start();
            }
            catch (Win32Exception ex)
            {
                process.Dispose();
                throw new InvalidArgumentException($"cannot run {info.FileName}: {ex.Message}", ex);
            }

            _process = process;
            return Task.FromResult(new StartedProcess(
                process.Id, process.StandardInput.BaseStream, process.StandardOutput.BaseStream, process.StandardError.BaseStream));
        }
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

    private void Signal(int signal, bool quiet)
    {
        int pid;
        lock (_gate)
        {
            if (_process is null)
            {
                // Never started: it ends now, as if the signal had killed it.
                _exited.TrySetResult(new ProcessExit(128 + signal, DateTimeOffset.UtcNow));
                return;
            }

            pid = _process.HasExited ? 0 : _process.Id;
        }

        if ((pid == 0 || Kill(pid, signal) != 0) && !quiet)
        {
            throw new NotFoundException("the process has exited");
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
