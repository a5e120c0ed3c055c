using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Runhcs.Internal;

/// <summary>
/// A container's init process or an exec, as runhcs runs it: a runhcs shim process (the pid in
/// the pid file) that holds the process's stdio and exits with its exit code.
/// </summary>
internal sealed class RunhcsProcess : IRuntimeProcess
{
    private static readonly int[] EndingSignals = [1, 2, 3, 6, 9, 15];

    private readonly RunhcsContainer _owner;
    private readonly string _execId;
    private readonly ILogger _logger;
    private readonly TaskCompletionSource<ProcessExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();

    // Guarded by _gate.
    private Process? _runhcs;
    private int _shimPid;
    private bool _started;
    private bool _startBegun;
    private bool _endedUnstarted;

    public RunhcsProcess(RunhcsContainer owner, string execId, string? processFile, ILogger logger)
    {
        _owner = owner;
        _execId = execId;
        ProcessFile = processFile;
        _logger = logger;
    }

    public bool IsInit => _execId.Length == 0;

    /// <summary>For an exec: the process JSON in the bundle.</summary>
    public string? ProcessFile { get; }

    /// <summary>The shim's pid once started (0 before), as the host's contract wants.</summary>
    public int Pid
    {
        get
        {
            lock (_gate)
            {
                return _started ? _shimPid : 0;
            }
        }
    }

    /// <summary>The shim's pid as soon as runhcs reported it (at create for the init process).</summary>
    public int ShimPid
    {
        get
        {
            lock (_gate)
            {
                return _shimPid;
            }
        }
    }

    public bool HasEnded => _exited.Task.IsCompleted;

    public Task<ProcessExit> Exited => _exited.Task;

    /// <summary>The init process after <c>runhcs create</c>: its shim is known and watched from here.</summary>
    public void Created(Process runhcs, int shimPid)
    {
        lock (_gate)
        {
            _runhcs = runhcs;
            _shimPid = shimPid;
        }

        Watch(shimPid);
    }

    public async Task<StartedProcess> StartAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_startBegun || _endedUnstarted)
            {
                throw new FailedPreconditionException("process was already started or has ended");
            }

            _startBegun = true;
        }

        Process runhcs;
        int pid;
        if (IsInit)
        {
            await _owner.StartInitAsync(cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                runhcs = _runhcs!;
                pid = _shimPid;
            }
        }
        else
        {
            (runhcs, pid) = await _owner.StartExecAsync(_execId, ProcessFile!, cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                _runhcs = runhcs;
                _shimPid = pid;
            }

            Watch(pid);
            RunhcsLog.ExecStarted(_logger, _owner.Id, _execId, pid);
        }

        lock (_gate)
        {
            _started = true;
        }

        return new StartedProcess(
            pid,
            runhcs.StandardInput.BaseStream,
            runhcs.StandardOutput.BaseStream,
            runhcs.StandardError.BaseStream);
    }

    public Task SignalAsync(int signal, bool all, CancellationToken cancellationToken = default) =>
        all ? _owner.SignalAllAsync(signal, cancellationToken) : SignalOneAsync(signal, cancellationToken);

    /// <summary>Signals just this process: the init through runhcs, an exec through its shim.</summary>
    public async Task SignalOneAsync(int signal, CancellationToken cancellationToken)
    {
        if (IsInit)
        {
            await _owner.Cli.RunAsync("kill", [_owner.Id, signal.ToString(CultureInfo.InvariantCulture)], cancellationToken)
                .ConfigureAwait(false);
            return;
        }

        int pid;
        lock (_gate)
        {
            if (!_started)
            {
                // Never started: nothing runs, so a terminating signal ends it right here.
                if (!_startBegun && !_endedUnstarted && EndingSignals.Contains(signal))
                {
                    _endedUnstarted = true;
                    _exited.TrySetResult(new ProcessExit(128 + signal, DateTimeOffset.UtcNow));
                }

                return;
            }

            pid = _shimPid;
        }

        if (HasEnded)
        {
            throw new NotFoundException($"exec {_execId} of {_owner.Id} has already exited");
        }

        // runhcs kill reaches only the init process. An exec's shim is ours to end instead.
        if (OperatingSystem.IsWindows())
        {
            // Limit: runhcs cannot signal an exec, so any signal ends the exec's shim, which ends the
            // process's stdio and its report; the process inside lives on until the container stops.
            KillShim(pid);
        }
        else if (!ExitWatcher.Signal(-pid, signal) && !ExitWatcher.Signal(pid, signal))
        {
            throw new NotFoundException($"exec {_execId} of {_owner.Id} (pid {pid}) no longer exists");
        }
    }

    public Task ResizeTerminalAsync(uint width, uint height, CancellationToken cancellationToken = default)
    {
        if (width is 0 or > 65535 || height is 0 or > 65535)
        {
            throw new InvalidArgumentException($"terminal size {width}x{height} is out of range 1..65535");
        }

        List<string> arguments =
        [
            _owner.Id,
            width.ToString(CultureInfo.InvariantCulture),
            height.ToString(CultureInfo.InvariantCulture),
        ];
        if (!IsInit)
        {
            arguments.Add("--pid");
            arguments.Add(Pid.ToString(CultureInfo.InvariantCulture));
        }

        return _owner.Cli.RunAsync("resize-tty", arguments, cancellationToken);
    }

    /// <summary>Ends what is left of this process when the container goes away.</summary>
    public void Terminate()
    {
        int pid;
        lock (_gate)
        {
            if (!_started && !_endedUnstarted && !IsInit)
            {
                _endedUnstarted = true;
                _exited.TrySetResult(new ProcessExit(128 + 9, DateTimeOffset.UtcNow));
            }

            pid = _shimPid;
        }

        if (pid > 0 && !HasEnded && !IsInit)
        {
            if (OperatingSystem.IsWindows())
            {
                KillShim(pid);
            }
            else
            {
                _ = ExitWatcher.Signal(-pid, 9) || ExitWatcher.Signal(pid, 9);
            }
        }
    }

    /// <summary>Releases the runhcs process object once the host no longer relays its streams.</summary>
    public void Release()
    {
        Process? runhcs;
        lock (_gate)
        {
            runhcs = _runhcs;
            _runhcs = null;
        }

        runhcs?.Dispose();
    }

    private void Watch(int pid) => _ = ReportAsync(pid);

    private async Task ReportAsync(int pid)
    {
        ProcessExit exit = await ExitWatcher.Watch(pid, _owner.Id, _logger).ConfigureAwait(false);
        RunhcsLog.ProcessExited(_logger, _owner.Id, _execId, pid, exit.Status);
        _exited.TrySetResult(exit);
    }

    private static void KillShim(int pid)
    {
        try
        {
            using Process shim = Process.GetProcessById(pid);
            shim.Kill();
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // It ended meanwhile: its exit is on its way through the watcher.
        }
    }
}
