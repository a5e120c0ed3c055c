using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Fake.Internal;

/// <summary>A Fake container: its init process and execs, all plain host processes.</summary>
internal sealed class FakeContainer : IRuntimeContainer
{
    private const int SigStop = 19;
    private const int SigCont = 18;

    private readonly ILogger _logger;
    private readonly FakeProcess _init;
    private readonly Lock _gate = new();

    // Guarded by _gate.
    private readonly List<FakeProcess> _execs = [];

    public FakeContainer(string id, ProcessSpec spec, ILogger logger)
    {
        Id = id;
        _logger = logger;
        _init = new FakeProcess(spec, this, logger);
    }

    public string Id { get; }

    public IRuntimeProcess Init => _init;

    public Task<IRuntimeProcess> CreateExecAsync(CreateExecRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ProcessSpec spec = ProcessSpec.Parse(request.ProcessSpecJson);
        var exec = new FakeProcess(spec, this, _logger);
        lock (_gate)
        {
            _execs.Add(exec);
        }

        return Task.FromResult<IRuntimeProcess>(exec);
    }

    public Task PauseAsync(CancellationToken cancellationToken = default)
    {
        SignalAll(SigStop);
        return Task.CompletedTask;
    }

    public Task ResumeAsync(CancellationToken cancellationToken = default)
    {
        SignalAll(SigCont);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<int>> ListPidsAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(AllPids());

    /// <summary>Signals every process of the container: init, execs and all their descendants.</summary>
    public void SignalAll(int signal)
    {
        foreach (int pid in AllPids())
        {
            ProcessTree.Signal(pid, signal);
        }
    }

    public ValueTask DisposeAsync()
    {
        FakeProcess[] execs;
        lock (_gate)
        {
            execs = [.. _execs];
        }

        foreach (FakeProcess process in execs.Prepend(_init))
        {
            process.Terminate();
        }

        return ValueTask.CompletedTask;
    }

    private IReadOnlyList<int> AllPids()
    {
        FakeProcess[] processes;
        lock (_gate)
        {
            processes = [_init, .. _execs];
        }

        int[] roots = [.. processes.Where(p => p.Pid > 0 && !p.HasEnded).Select(p => p.Pid)];
        return roots.Length == 0 ? [] : ProcessTree.Of(roots);
    }
}
