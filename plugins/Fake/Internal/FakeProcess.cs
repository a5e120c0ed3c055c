using System.Diagnostics;
using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;
using PluggableShim.Plugins.Fake.Internal.Faults;

namespace PluggableShim.Plugins.Fake.Internal;

/// <summary>
/// One host process. Its exit is watched from the moment it starts; a process signalled before
/// it was ever started ends right there with 128 + signal, as a created container would.
/// </summary>
/// <remarks>
/// Injected endings (exit-after, oom-after) are timers armed at start and disarmed by the exit,
/// whatever causes it. The first one to fire claims the ending under <c>_gate</c>, reports an OOM if
/// it is one (before the kill, so the OOM event precedes the exit event), then SIGKILLs the process
/// tree; the exit watcher turns the claim into the status. The process's own exit races the timer
/// exactly as a real process races the OOM killer: whichever the watcher sees decides.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage(
    "Design",
    "CA1001:Types that own disposable fields should be disposable",
    Justification = "_ended is never linked, timed or asked for a wait handle, so it holds nothing to release; "
                    + "disposing it would break the exit watcher that cancels it last")]
internal sealed class FakeProcess : IRuntimeProcess
{
    private const int SigKill = 9;
    private const int OomKilledStatus = 128 + SigKill;

    private readonly ProcessSpec _spec;
    private readonly FakeContainer _owner;
    private readonly string _execId;
    private bool _leadsGroup; // guarded by _gate: started through setsid, so its pid is its group's
    private readonly ProcessFaults _faults;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource<ProcessExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Cancelled once the process has ended or is terminated: disarms delays and ending timers.
    private readonly CancellationTokenSource _ended = new();
    private readonly Lock _gate = new();

    // Guarded by _gate.
    private Process? _process;
    private int _pid;
    private bool _endedUnstarted;
    private Ending _ending;

    public FakeProcess(ProcessSpec spec, FakeContainer owner, string execId, ProcessFaults faults, TimeProvider time, ILogger logger)
    {
        _spec = spec;
        _owner = owner;
        _execId = execId;
        _faults = faults;
        _time = time;
        _logger = logger;
    }

    private enum Ending
    {
        None,
        ExitAfter,
        OutOfMemory,
    }

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

    private string Operation => _execId.Length == 0 ? "start" : "start of exec " + _execId;

    public async Task<StartedProcess> StartAsync(CancellationToken cancellationToken = default)
    {
        string executable = _spec.ResolveExecutable();
        if (!Directory.Exists(_spec.Cwd))
        {
            throw new FailedPreconditionException(
                $"cwd {_spec.Cwd} does not exist on the host (the Fake plugin runs processes on the host, not in the rootfs)");
        }

        if (_faults.StartDelay is { } delay)
        {
            await _owner.DelayAsync(Operation, delay, _ended.Token, cancellationToken).ConfigureAwait(false);
        }

        if (_faults.StartError is { } error)
        {
            FakeLog.Failing(_logger, _owner.Id, Operation, error.Annotation);
            throw error.ToException(Operation);
        }

        StartedProcess started = Spawn(executable);
        FakeLog.ProcessStarted(_logger, _owner.Id, started.Pid, executable);
        if (_faults.ExitAfter is { } exitAfter)
        {
            _ = EndAfterAsync(exitAfter, Ending.ExitAfter);
        }

        if (_faults.OomAfter is { } oomAfter)
        {
            _ = EndAfterAsync(oomAfter, Ending.OutOfMemory);
        }

        return started;
    }

    public Task SignalAsync(int signal, bool all, CancellationToken cancellationToken = default)
    {
        if (all)
        {
            _owner.SignalAll(signal);
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
                    EndUnstarted(128 + signal);
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
        KillTree();
        lock (_gate)
        {
            if (_process is null && !_endedUnstarted)
            {
                EndUnstarted(128 + SigKill);
            }
        }

        _ended.Cancel();
    }

    private StartedProcess Spawn(string executable)
    {
        // Through setsid where we can: the process and everything it forks form a group we can
        // end as one, as a PID namespace ends with its init (see ProcessTree.SessionLauncher).
        string? launcher = ProcessTree.SessionLauncher;
        var info = new ProcessStartInfo(launcher ?? executable)
        {
            WorkingDirectory = _spec.Cwd,
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (launcher is not null)
        {
            info.ArgumentList.Add(executable);
        }

        foreach (string argument in _spec.Args.Skip(1))
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment.Clear();
        foreach (string entry in _spec.Env)
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
            _leadsGroup = launcher is not null;
        }

        // Everything is read off the Process before the watcher runs: it may see the exit at once.
        var started = new StartedProcess(
            process.Id,
            process.StandardInput.BaseStream,
            process.StandardOutput.BaseStream,
            process.StandardError.BaseStream);
        _ = WatchAsync(process);
        return started;
    }

    // Called under _gate.
    private void EndUnstarted(int status)
    {
        _endedUnstarted = true;
        _exited.TrySetResult(new ProcessExit(status, _time.GetUtcNow()));
    }

    private async Task EndAfterAsync(TimeSpan after, Ending ending)
    {
        try
        {
            await Task.Delay(after, _time, _ended.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return; // the process ended first
        }

        lock (_gate)
        {
            if (HasEnded || _ending != Ending.None)
            {
                return;
            }

            _ending = ending;
        }

        if (ending == Ending.OutOfMemory)
        {
            FakeLog.OomInjected(_logger, _owner.Id, _execId, Pid);
            _owner.ReportOutOfMemory();
        }
        else
        {
            FakeLog.ExitInjected(_logger, _owner.Id, _execId, Pid);
        }

        KillTree();
    }

    private void KillTree()
    {
        // Parents first: a child that a dying parent leaves behind is already on the list.
        foreach (int pid in Tree())
        {
            ProcessTree.Signal(pid, SigKill);
        }

        KillGroup();
    }

    /// <summary>Ends whatever is left of the process's group (re-parented descendants included).</summary>
    public void KillGroup()
    {
        int pid;
        lock (_gate)
        {
            if (!_leadsGroup)
            {
                return;
            }

            pid = _pid;
        }

        ProcessTree.SignalGroup(pid, SigKill);
    }

    /// <summary>Signals the process's group, if it leads one; whatever is no longer there is skipped.</summary>
    public void SignalGroupQuietly(int signal)
    {
        int pid;
        lock (_gate)
        {
            if (!_leadsGroup)
            {
                return;
            }

            pid = _pid;
        }

        ProcessTree.SignalGroup(pid, signal);
    }

    private async Task WatchAsync(Process process)
    {
        int status;
        try
        {
            await process.WaitForExitAsync().ConfigureAwait(false);
            // On Unix .NET reports a signalled process as 128 + signal, which is containerd's convention too.
            status = process.ExitCode;
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            FakeLog.WatchFailed(_logger, _owner.Id, ex);
            status = 255;
        }

        Ending ending;
        lock (_gate)
        {
            ending = _ending;
        }

        status = ending switch
        {
            Ending.OutOfMemory => OomKilledStatus,
            Ending.ExitAfter => _faults.ExitCode ?? 0,
            _ => _faults.ExitCode ?? status,
        };
        if (_execId.Length == 0)
        {
            // A container's init died: so does everything it started, as in a PID namespace.
            // Its exit is then reported once the output they held is closed, not seconds later.
            KillGroup();
        }

        _exited.TrySetResult(new ProcessExit(status, _time.GetUtcNow()));
        await _ended.CancelAsync().ConfigureAwait(false);

        // The Process is not disposed here: that would close the standard streams the host may
        // still be draining. The host disposes those; the Process object holds nothing else.
    }
}
