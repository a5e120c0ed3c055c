using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;
using PluggableShim.Host.Logging;
using PluggableShim.Host.Tasks;

namespace PluggableShim.Host.Grouping;

/// <summary>
/// Who a daemon serves — its tasks and the containers that joined but whose Create has not come
/// yet — and hence when it may exit: on Shutdown with nobody left, or when the last reservation
/// lapses unclaimed.
/// </summary>
/// <remarks>
/// The race this closes: <c>start</c> for a pod's next container finds the daemon and prints its
/// address; before containerd sends that container's Create, the pod's last task is deleted and
/// Shutdown arrives. A joining start therefore reserves its container first (<see cref="Join"/>),
/// under the group lock, and the daemon decides to exit only under the same lock, removing its
/// socket before it lets go: a start sees either a daemon that will wait for its Create, or no
/// socket at all (and spawns a new daemon).
/// </remarks>
internal sealed class GroupMembership : IDisposable
{
    /// <summary>How long a joined container's place is kept for its Create.</summary>
    public static readonly TimeSpan ReservationTimeout = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(30);

    private readonly ShimLifetime _lifetime;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string? _socketPath;
    private readonly string _plugin;
    private readonly BundleLogSinks? _logs;
    private readonly Action? _withdraw;
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _exitGate = new(1, 1);

    // Guarded by _gate.
    private readonly HashSet<string> _tasks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ITimer> _reservations = new(StringComparer.Ordinal);
    private bool _exiting;

    /// <param name="socketPath">The daemon's socket (its lock is beside it); null when not serving one (tests).</param>
    /// <param name="logs">The daemon's log FIFOs: each member's bundle gets one; null in tests.</param>
    /// <param name="withdraw">Stops new clients reaching the daemon, where removing the socket path does not (a named pipe).</param>
    public GroupMembership(
        ShimLifetime lifetime,
        ShimOptions options,
        TimeProvider time,
        ILogger<GroupMembership> logger,
        string? socketPath = null,
        BundleLogSinks? logs = null,
        Action? withdraw = null)
    {
        _logs = logs;
        _withdraw = withdraw;
        _lifetime = lifetime;
        _time = time;
        _logger = logger;
        _socketPath = socketPath;
        _plugin = options.Plugin.Name;
    }

    /// <summary>Tasks plus reservations.</summary>
    public int Members
    {
        get
        {
            lock (_gate)
            {
                return _tasks.Count + _reservations.Count;
            }
        }
    }

    /// <summary>
    /// Keeps a place for <paramref name="containerId"/>, whose Create will follow.
    /// </summary>
    /// <returns>The number of members, this one included; null if the daemon is exiting.</returns>
    public int? Join(string containerId, string plugin, string? bundle)
    {
        if (!string.Equals(plugin, _plugin, StringComparison.Ordinal))
        {
            throw new FailedPreconditionException(
                $"container {containerId} selects plugin {plugin}, but its group's shim runs plugin {_plugin}");
        }

        int members;
        lock (_gate)
        {
            if (_exiting)
            {
                return null;
            }

            if (!_tasks.Contains(containerId) && !_reservations.ContainsKey(containerId))
            {
                _reservations[containerId] = _time.CreateTimer(
                    _ => Lapse(containerId), null, ReservationTimeout, Timeout.InfiniteTimeSpan);
            }

            members = _tasks.Count + _reservations.Count;
        }

        if (bundle is not null)
        {
            _logs?.Add(containerId, bundle);
        }

        GroupLog.Joined(_logger, containerId, members);
        return members;
    }

    /// <summary>The task table took the id (its Create began): it is a task now, not a reservation.</summary>
    /// <returns>False once the daemon decided to exit: the Create must be refused.</returns>
    public bool TaskAdded(string containerId)
    {
        ITimer? timer;
        lock (_gate)
        {
            if (_exiting)
            {
                return false;
            }

            _tasks.Add(containerId);
            _reservations.Remove(containerId, out timer);
        }

        timer?.Dispose();
        return true;
    }

    /// <summary>The task was deleted, or its Create failed.</summary>
    public void TaskRemoved(string containerId)
    {
        lock (_gate)
        {
            _tasks.Remove(containerId);
        }

        _logs?.Remove(containerId);
    }

    /// <summary>Shutdown was called: exit once answered, if nobody is left.</summary>
    public void ShutdownRequested(string containerId) =>
        _ = ExitAsync($"Shutdown after the last task ({containerId})", force: false);

    /// <summary>Exit whatever remains (SIGTERM); the caller kills what is left.</summary>
    public Task ExitNowAsync(string reason) => ExitAsync(reason, force: true);

    public void Dispose()
    {
        ITimer[] timers;
        lock (_gate)
        {
            timers = [.. _reservations.Values];
            _reservations.Clear();
        }

        foreach (ITimer timer in timers)
        {
            timer.Dispose();
        }
    }

    private void Lapse(string containerId)
    {
        bool lapsed;
        lock (_gate)
        {
            lapsed = _reservations.Remove(containerId, out ITimer? timer);
            timer?.Dispose();
        }

        if (lapsed)
        {
            _logs?.Remove(containerId);
            GroupLog.ReservationLapsed(_logger, containerId);
            _ = ExitAsync($"no Create came for {containerId}", force: false);
        }
    }

    private async Task ExitAsync(string reason, bool force)
    {
        // One exit decision at a time: two Shutdowns of a pod arrive together, and a second
        // decision taking the lock after the first deleted it would create a lock file nobody removes.
        await _exitGate.WaitAsync().ConfigureAwait(false);
        GroupLock? held = null;
        try
        {
            lock (_gate)
            {
                if (_exiting)
                {
                    return;
                }
            }

            if (_socketPath is not null)
            {
                try
                {
                    held = await GroupLock.AcquireAsync(GroupLock.PathFor(_socketPath), LockTimeout).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is TimeoutException or IOException)
                {
                    // Leave without touching the socket path: without the lock it may already be
                    // a successor's. A start that finds our stale socket replaces it.
                    GroupLog.LockFailed(_logger, ex.Message);
                }
            }

            lock (_gate)
            {
                if (_exiting || (!force && _tasks.Count + _reservations.Count > 0))
                {
                    return;
                }

                _exiting = true;
            }

            // Connections already open keep working; new ones find no socket and start afresh.
            // Closing our own pipe instances needs no lock, and must happen even without it, or a
            // successor could serve the same pipe name beside us; only the paths need the lock.
            _withdraw?.Invoke();
            if (_socketPath is not null && held is not null)
            {
                File.Delete(_socketPath);
                held.DeleteFile();
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            GroupLog.LockFailed(_logger, ex.Message);
        }
        finally
        {
            held?.Dispose();
            _exitGate.Release();
        }

        _lifetime.RequestExit(reason);
    }
}

internal static partial class GroupLog
{
    [LoggerMessage(500, LogLevel.Information, "container {ContainerId} joined this shim ({Members} members)", EventName = "Joined")]
    public static partial void Joined(ILogger logger, string containerId, int members);

    [LoggerMessage(501, LogLevel.Warning, "no Create came for joined container {ContainerId}; its place is released",
        EventName = "ReservationLapsed")]
    public static partial void ReservationLapsed(ILogger logger, string containerId);

    [LoggerMessage(502, LogLevel.Warning, "group lock: {Message}", EventName = "LockFailed")]
    public static partial void LockFailed(ILogger logger, string message);
}
