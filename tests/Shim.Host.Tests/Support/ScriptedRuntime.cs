using PluggableShim.Abstractions;

namespace PluggableShim.Host.Tests.Support;

/// <summary>
/// An in-memory plugin whose processes end when a test says so. For unit tests of the host's
/// Task API semantics only; the real plugins are tested end to end.
/// </summary>
internal sealed class ScriptedRuntime : IContainerRuntime
{
    private int _nextPid = 1000;

    public Dictionary<string, ScriptedContainer> Containers { get; } = [];

    public Func<CreateContainerRequest, Exception?> FailCreate { get; set; } = _ => null;

    public Task<IRuntimeContainer> CreateAsync(CreateContainerRequest request, CancellationToken cancellationToken = default)
    {
        if (FailCreate(request) is { } failure)
        {
            throw failure;
        }

        var container = new ScriptedContainer(this);
        lock (Containers)
        {
            Containers[request.Id] = container;
        }

        return Task.FromResult<IRuntimeContainer>(container);
    }

    internal int NextPid() => Interlocked.Increment(ref _nextPid);
}

internal sealed class ScriptedContainer(ScriptedRuntime runtime) : IRuntimeContainer
{
    public ScriptedProcess InitProcess { get; } = new(runtime);

    public List<ScriptedProcess> ExecProcesses { get; } = [];

    public bool Disposed { get; private set; }

    public bool Paused { get; private set; }

    public IRuntimeProcess Init => InitProcess;

    public Task<IRuntimeProcess> CreateExecAsync(CreateExecRequest request, CancellationToken cancellationToken = default)
    {
        var exec = new ScriptedProcess(runtime) { SpecJson = request.ProcessSpecJson };
        lock (ExecProcesses)
        {
            ExecProcesses.Add(exec);
        }

        return Task.FromResult<IRuntimeProcess>(exec);
    }

    public Task PauseAsync(CancellationToken cancellationToken = default)
    {
        Paused = true;
        return Task.CompletedTask;
    }

    public Task ResumeAsync(CancellationToken cancellationToken = default)
    {
        Paused = false;
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<int>> ListPidsAsync(CancellationToken cancellationToken = default)
    {
        lock (ExecProcesses)
        {
            return Task.FromResult<IReadOnlyList<int>>(
                [.. ExecProcesses.Prepend(InitProcess).Where(p => p.Pid > 0).Select(p => p.Pid)]);
        }
    }

    public ValueTask DisposeAsync()
    {
        Disposed = true;
        return ValueTask.CompletedTask;
    }
}

internal sealed class ScriptedProcess(ScriptedRuntime runtime) : IRuntimeProcess
{
    private readonly TaskCompletionSource<ProcessExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public int Pid { get; private set; }

    public string? SpecJson { get; init; }

    public List<(int Signal, bool All)> Signals { get; } = [];

    /// <summary>When set, the process ends with this status the moment it starts.</summary>
    public int? ExitOnStart { get; set; }

    /// <summary>When set, a signal ends the process with 128 + signal.</summary>
    public bool DiesOnSignal { get; set; } = true;

    public Task<ProcessExit> Exited => _exited.Task;

    /// <summary>When set, Start throws it and nothing runs.</summary>
    public Exception? FailStart { get; set; }

    /// <summary>When set, Start waits for it before the process runs: a Start in flight.</summary>
    public TaskCompletionSource? StartGate { get; set; }

    public async Task<StartedProcess> StartAsync(CancellationToken cancellationToken = default)
    {
        if (StartGate is { } gate)
        {
            await gate.Task.WaitAsync(cancellationToken);
        }

        if (FailStart is { } failure)
        {
            throw failure;
        }

        Pid = runtime.NextPid();
        if (ExitOnStart is { } status)
        {
            Exit(status);
        }

        return new StartedProcess(Pid, null, null, null);
    }

    public Task SignalAsync(int signal, bool all, CancellationToken cancellationToken = default)
    {
        lock (Signals)
        {
            Signals.Add((signal, all));
        }

        if (DiesOnSignal)
        {
            Exit(128 + signal);
        }

        return Task.CompletedTask;
    }

    public void Exit(int status) => _exited.TrySetResult(new ProcessExit(status, DateTimeOffset.UtcNow));
}
