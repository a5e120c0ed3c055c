using Google.Protobuf;
using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;
using PluggableShim.Plugins.Fake.Internal.Faults;
using PluggableShim.Plugins.Fake.Internal.Metrics;

namespace PluggableShim.Plugins.Fake.Internal;

/// <summary>
/// A Fake container: its init process and execs, all plain host processes; the resources it was
/// given (recorded for Stats, never enforced) and the faults its annotations inject.
/// </summary>
internal sealed class FakeContainer : IRuntimeContainer
{
    private const int SigStop = 19;
    private const int SigCont = 18;

    private readonly ILogger _logger;
    private readonly FakeProcess _init;
    private readonly FaultPlan _faults;
    private readonly IContainerEvents _events;
    private readonly TimeProvider _time;

    // Cancelled by DisposeAsync: ends the injected delays of Exec calls still waiting.
    private readonly CancellationTokenSource _disposed = new();
    private readonly Lock _gate = new();

    // Guarded by _gate.
    private readonly List<FakeProcess> _execs = [];
    private ResourceLimits _resources;
    private ulong _ooms;

    public FakeContainer(string id, BundleConfig config, IContainerEvents events, TimeProvider time, ILogger logger)
    {
        Id = id;
        _logger = logger;
        _faults = config.Faults;
        _events = events;
        _time = time;
        _resources = config.Resources;
        _init = new FakeProcess(config.Process, this, string.Empty, config.Faults.Init, time, logger);
    }

    public string Id { get; }

    public IRuntimeProcess Init => _init;

    public async Task<IRuntimeProcess> CreateExecAsync(CreateExecRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ProcessSpec spec = ProcessSpec.Parse(request.ProcessSpecJson);
        ProcessFaults faults = _faults.ForExec(request.ExecId);
        if (faults.CreateDelay is { } delay)
        {
            await DelayAsync("exec " + request.ExecId, delay, _disposed.Token, cancellationToken).ConfigureAwait(false);
        }

        if (faults.CreateError is { } error)
        {
            FakeLog.Failing(_logger, Id, "exec " + request.ExecId, error.Annotation);
            throw error.ToException("exec " + request.ExecId);
        }

        var exec = new FakeProcess(spec, this, request.ExecId, faults, _time, _logger);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
            _execs.Add(exec);
        }

        return exec;
    }

    public ValueTask ReleaseExecAsync(IRuntimeProcess exec, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            _execs.Remove((FakeProcess)exec);
        }

        return ValueTask.CompletedTask;
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

    public Task<TypedPayload> StatsAsync(CancellationToken cancellationToken = default)
    {
        IReadOnlyList<int> pids = AllPids();
        ProcessUsage usage = UsageSampler.Measure(pids);
        ResourceLimits resources;
        ulong ooms;
        lock (_gate)
        {
            resources = _resources;
            ooms = _ooms;
        }

        Contracts.Cgroups.V2.Metrics metrics = MetricsBuilder.Build(usage, pids.Count, resources, ooms);
        return Task.FromResult(new TypedPayload(MetricsBuilder.TypeUrl, metrics.ToByteArray()));
    }

    public Task UpdateAsync(TypedPayload resources, IReadOnlyDictionary<string, string> annotations,
        CancellationToken cancellationToken = default)
    {
        ResourceLimits update = ResourceLimits.FromPayload(resources);
        ResourceLimits now;
        lock (_gate)
        {
            now = _resources = _resources.With(update);
        }

        FakeLog.ResourcesUpdated(_logger, Id, now.MemoryLimit, now.CpuShares, now.CpuQuota, now.PidsLimit);
        return Task.CompletedTask;
    }

    // Checkpoint keeps the interface's default (Unimplemented); the capability is not declared either.

    /// <summary>Signals every process of the container: init, execs and all their descendants.</summary>
    public void SignalAll(int signal)
    {
        foreach (int pid in AllPids())
        {
            ProcessTree.Signal(pid, signal);
        }

        // And the processes' groups: descendants that left the tree (re-parented) are still there.
        FakeProcess[] processes;
        lock (_gate)
        {
            processes = [_init, .. _execs];
        }

        foreach (FakeProcess process in processes)
        {
            process.SignalGroupQuietly(signal);
        }
    }

    /// <summary>A process of this container was "killed for lack of memory" by an injected fault.</summary>
    public void ReportOutOfMemory()
    {
        lock (_gate)
        {
            _ooms++;
        }

        // Reported before the kill, so containerd receives /tasks/oom before the process's /tasks/exit.
        _events.OutOfMemory();
    }

    /// <summary>
    /// Waits out an injected delay; cut short (FailedPrecondition) when the container or the process
    /// goes away, or by the caller's token (the call's deadline).
    /// </summary>
    public async Task DelayAsync(string operation, TimeSpan delay, CancellationToken gone, CancellationToken cancellationToken)
    {
        FakeLog.Delaying(_logger, Id, operation, delay.TotalMilliseconds);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(gone, _disposed.Token, cancellationToken);
        try
        {
            await Task.Delay(delay, _time, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new FailedPreconditionException($"{operation} of {Id}: the process or container ended during the injected delay");
        }
    }

    public async ValueTask DisposeAsync()
    {
        FakeProcess[] execs;
        lock (_gate)
        {
            execs = [.. _execs];
        }

        await _disposed.CancelAsync().ConfigureAwait(false);
        foreach (FakeProcess process in execs.Prepend(_init))
        {
            process.Terminate();
        }
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
