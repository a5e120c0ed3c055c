using System.Diagnostics;
using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Fake.Internal;

/// <summary>
/// One host process. Its exit is watched from the moment it starts; a process signalled before
/// it was ever started ends right there with 128 + signal, as a created container would.
/// </summary>
internal sealed class FakeProcess(ProcessSpec spec, FakeContainer owner, ILogger logger) : IRuntimeProcess
{
    private readonly TaskCompletionSource<ProcessExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();

    // Guarded by _gate.
    private Process? _process;
    private int _pid;
    private bool _endedUnstarted;

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

    public bool HasEnded => _exited.Task.IsCompleted;

    public Task<StartedProcess> StartAsync(CancellationToken cancellationToken = default)
    {
        string executable = spec.ResolveExecutable();
        if (!Directory.Exists(spec.Cwd))
        {
            throw new FailedPreconditionException(
                $"cwd {spec.Cwd} does not exist on the host (the Fake plugin runs processes on the host, not in the rootfs)");
        }

        var info = new ProcessStartInfo(executable)
        {
            WorkingDirectory = spec.Cwd,
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in spec.Args.Skip(1))
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment.Clear();
        foreach (string entry in spec.Env)
        {
            int eq = entry.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                info.Environment[entry[..eq]] = entry[(eq + 1)..];
            }
        }

        Process process;
        lock (_gate)
        {
            if (_process is not null || _endedUnstarted)
            {
                throw new FailedPreconditionException("process was already started or has ended");
            }

            process = new Process { StartInfo = info, EnableRaisingEvents = true };
            try
            {
                process.Start();
            }
            catch (System.ComponentModel.Win32Exception ex)
            {
                process.Dispose();
                throw new FailedPreconditionException($"cannot start {executable}: {ex.Message}");
            }

            _process = process;
            _pid = process.Id;
        }

        // Everything is read off the Process before the watcher runs: it may see the exit at once.
        var started = new StartedProcess(
            process.Id,
            process.StandardInput.BaseStream,
            process.StandardOutput.BaseStream,
            process.StandardError.BaseStream);
        _ = WatchAsync(process);
        FakeLog.ProcessStarted(logger, owner.Id, started.Pid, executable);
        return Task.FromResult(started);
    }

    public Task SignalAsync(int signal, bool all, CancellationToken cancellationToken = default)
    {
        if (all)
        {
            owner.SignalAll(signal);
            return Task.CompletedTask;
        }

        Signal(signal);
        return Task.CompletedTask;
    }

    /// <summary>Signals this process only; an unstarted one ends with 128 + signal.</summary>
    public void Signal(int signal)
    {
        int pid;
        lock (_gate)
        {
            if (_process is null)
            {
                if (!_endedUnstarted && signal is 9 or 15 or 2 or 1 or 3 or 6)
                {
                    _endedUnstarted = true;
                    _exited.TrySetResult(new ProcessExit(128 + signal, DateTimeOffset.UtcNow));
                }

                return;
            }

            pid = _pid;
        }

        if (!HasEnded && !ProcessTree.Signal(pid, signal))
        {
            throw new NotFoundException($"process {pid} no longer exists");
        }
    }

    /// <summary>This process and its descendants, if it runs.</summary>
    public IReadOnlyList<int> Tree() => Pid > 0 && !HasEnded ? ProcessTree.Of([Pid]) : [];

    /// <summary>Ends the process (and its descendants) for good; used when the container goes away.</summary>
    public void Terminate()
    {
        foreach (int pid in Tree())
        {
            ProcessTree.Signal(pid, 9);
        }

        lock (_gate)
        {
            if (_process is null)
            {
                _endedUnstarted = true;
                _exited.TrySetResult(new ProcessExit(128 + 9, DateTimeOffset.UtcNow));
            }
        }
    }

    private async Task WatchAsync(Process process)
    {
        try
        {
            await process.WaitForExitAsync().ConfigureAwait(false);
            // On Unix .NET reports a signalled process as 128 + signal, which is containerd's convention too.
            _exited.TrySetResult(new ProcessExit(process.ExitCode, DateTimeOffset.UtcNow));
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            FakeLog.WatchFailed(logger, owner.Id, ex);
            _exited.TrySetResult(new ProcessExit(255, DateTimeOffset.UtcNow));
        }

        // The Process is not disposed here: that would close the standard streams the host may
        // still be draining. The host disposes those; the Process object holds nothing else.
    }
}
