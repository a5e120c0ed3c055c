using Google.Protobuf.WellKnownTypes;
using PluggableShim.Abstractions;
using PluggableShim.Contracts.Types;
using PluggableShim.Host.IO;

namespace PluggableShim.Host.Tasks.Internal;

/// <summary>Where a process is in its life, as the host tracks it.</summary>
internal enum ProcessState
{
    Created,
    Running,
    Stopped,
}

/// <summary>
/// The host's record of one process (a container's init or an exec): its state, pid, exit and IO.
/// </summary>
internal sealed class ProcessTask
{
    private readonly Lock _gate = new();
    private readonly TaskCompletionSource _startSettled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<ProcessExit> _exitRecorded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Guarded by _gate.
    private ProcessState _state = ProcessState.Created;
    private bool _startRequested;
    private int _pid;
    private ProcessExit? _exit;
    private bool _startFailed;

    public ProcessTask(string containerId, string execId, IRuntimeProcess runtime, ProcessIo io, StdioPaths stdio)
    {
        ContainerId = containerId;
        ExecId = execId;
        Runtime = runtime;
        Io = io;
        Stdio = stdio;
    }

    public string ContainerId { get; }

    /// <summary>The exec id; empty for a container's init process.</summary>
    public string ExecId { get; }

    public bool IsInit => ExecId.Length == 0;

    public IRuntimeProcess Runtime { get; }

    public ProcessIo Io { get; }

    public StdioPaths Stdio { get; }

    /// <summary>Completes once the exit is recorded and its event queued (after the output was drained).</summary>
    public Task<ProcessExit> ExitRecorded => _exitRecorded.Task;

    public ProcessState State
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
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

    public ProcessExit? Exit
    {
        get
        {
            lock (_gate)
            {
                return _exit;
            }
        }
    }

    /// <summary>Marks the start as under way; false if the process was already started or has ended.</summary>
    public bool TryBeginStart()
    {
        lock (_gate)
        {
            if (_startRequested || _state != ProcessState.Created)
            {
                return false;
            }

            _startRequested = true;
            return true;
        }
    }

    public void MarkRunning(int pid)
    {
        lock (_gate)
        {
            _pid = pid;
            if (_state == ProcessState.Created)
            {
                _state = ProcessState.Running;
            }
        }
    }

    /// <summary>Whether a Start was ever asked for (an exec never started reports no exit).</summary>
    public bool StartRequested
    {
        get
        {
            lock (_gate)
            {
                return _startRequested;
            }
        }
    }

    /// <summary>A Start is under way: the plugin call has not returned yet.</summary>
    public bool StartInFlight
    {
        get
        {
            lock (_gate)
            {
                return _startRequested && !_startSettled.Task.IsCompleted;
            }
        }
    }

    /// <summary>Start finished (published, or failed); an exit seen meanwhile may now be recorded.</summary>
    public void StartSettled() => _startSettled.TrySetResult();

    /// <summary>Waits until a start that was requested has settled, so that exit follows start.</summary>
    public Task WaitForStartToSettle()
    {
        lock (_gate)
        {
            return _startRequested ? _startSettled.Task : Task.CompletedTask;
        }
    }

    public void RecordExit(ProcessExit exit)
    {
        lock (_gate)
        {
            _state = ProcessState.Stopped;
            _exit = exit;
        }
    }

    public void ExitPublished(ProcessExit exit) => _exitRecorded.TrySetResult(exit);

    /// <summary>
    /// Start failed, so nothing runs: Wait answers at once with <paramref name="exit"/>, and no
    /// exit is published (no start was either).
    /// </summary>
    public void StartFailed(ProcessExit exit)
    {
        lock (_gate)
        {
            _startFailed = true;
            _state = ProcessState.Stopped;
            _exit = exit;
        }

        _exitRecorded.TrySetResult(exit);
    }

    public bool HasStartFailed
    {
        get
        {
            lock (_gate)
            {
                return _startFailed;
            }
        }
    }

    public Timestamp? ExitedAt => Exit is { } e ? Timestamp.FromDateTimeOffset(e.ExitedAt) : null;

    public uint ExitStatus => Exit is { } e ? (uint)e.Status : 0;

    public Status WireStatus(bool paused) => State switch
    {
        ProcessState.Created => Status.Created,
        ProcessState.Running => paused ? Status.Paused : Status.Running,
        _ => Status.Stopped,
    };
}
