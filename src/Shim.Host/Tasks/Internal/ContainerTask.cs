using PluggableShim.Abstractions;
using PluggableShim.Contracts.Types;

namespace PluggableShim.Host.Tasks.Internal;

/// <summary>The host's record of a container: its runtime object, init process and execs.</summary>
internal sealed class ContainerTask(string id, string bundle, IRuntimeContainer runtime, ProcessTask init)
{
    private readonly Lock _gate = new();

    // Guarded by _gate.
    private readonly Dictionary<string, ProcessTask?> _execs = new(StringComparer.Ordinal);
    private bool _paused;

    public string Id { get; } = id;

    public string Bundle { get; } = bundle;

    public IRuntimeContainer Runtime { get; } = runtime;

    public ProcessTask Init { get; } = init;

    public IReadOnlyList<Mount> Rootfs { get; init; } = [];

    public bool Paused
    {
        get
        {
            lock (_gate)
            {
                return _paused;
            }
        }

        set
        {
            lock (_gate)
            {
                _paused = value;
            }
        }
    }

    /// <summary>Reserves an exec id before the plugin creates it; false if taken.</summary>
    public bool TryReserveExec(string execId)
    {
        lock (_gate)
        {
            return _execs.TryAdd(execId, null);
        }
    }

    public void CompleteExec(ProcessTask exec)
    {
        lock (_gate)
        {
            _execs[exec.ExecId] = exec;
        }
    }

    public void RemoveExec(string execId)
    {
        lock (_gate)
        {
            _execs.Remove(execId);
        }
    }

    public ProcessTask Find(string execId)
    {
        if (execId.Length == 0)
        {
            return Init;
        }

        lock (_gate)
        {
            return _execs.TryGetValue(execId, out ProcessTask? exec) && exec is not null
                ? exec
                : throw new NotFoundException($"exec {execId} not found in container {Id}");
        }
    }

    public ProcessTask[] Execs()
    {
        lock (_gate)
        {
            return [.. _execs.Values.OfType<ProcessTask>()];
        }
    }
}
