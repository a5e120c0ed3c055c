namespace PluggableShim.Abstractions;

/// <summary>Creates containers. A plugin registers one implementation; the host calls it for every Create.</summary>
public interface IContainerRuntime
{
    /// <summary>
    /// Creates the container described by the bundle, with its init process created but not started.
    /// Throw <see cref="ShimException"/> subclasses for failures with a meaning (bad input, unsupported).
    /// </summary>
    Task<IRuntimeContainer> CreateAsync(CreateContainerRequest request, CancellationToken cancellationToken = default);
}

/// <summary>A container the plugin created. Disposing it releases everything the plugin holds for it.</summary>
public interface IRuntimeContainer : IAsyncDisposable
{
    /// <summary>The container's init process.</summary>
    IRuntimeProcess Init { get; }

    /// <summary>Creates (without starting) an extra process in the container.</summary>
    Task<IRuntimeProcess> CreateExecAsync(CreateExecRequest request, CancellationToken cancellationToken = default) =>
        throw new UnimplementedException("exec");

    /// <summary>
    /// The host deleted an exec (it has exited, or never started): release what the plugin holds
    /// for it. Without this, a container that runs many execs (probes) would grow without bound.
    /// </summary>
    ValueTask ReleaseExecAsync(IRuntimeProcess exec, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <summary>Freezes every process of the container.</summary>
    Task PauseAsync(CancellationToken cancellationToken = default) => throw new UnimplementedException("pause");

    /// <summary>Thaws the container.</summary>
    Task ResumeAsync(CancellationToken cancellationToken = default) => throw new UnimplementedException("resume");

    /// <summary>Lists every process running in the container, execs and their children included.</summary>
    Task<IReadOnlyList<int>> ListPidsAsync(CancellationToken cancellationToken = default) =>
        throw new UnimplementedException("pids");

    /// <summary>Resource usage, as a protobuf message the host sends in a StatsResponse.</summary>
    Task<TypedPayload> StatsAsync(CancellationToken cancellationToken = default) =>
        throw new UnimplementedException("stats");

    /// <summary>Applies new resource limits.</summary>
    Task UpdateAsync(TypedPayload resources, IReadOnlyDictionary<string, string> annotations,
        CancellationToken cancellationToken = default) => throw new UnimplementedException("update");

    /// <summary>Checkpoints the container to <paramref name="path"/>.</summary>
    Task CheckpointAsync(string path, TypedPayload? options, CancellationToken cancellationToken = default) =>
        throw new UnimplementedException("checkpoint");
}

/// <summary>
/// A process the plugin runs: a container's init or an exec. Created stopped; the host starts it,
/// relays its standard streams, and learns of its end through <see cref="Exited"/>.
/// </summary>
public interface IRuntimeProcess
{
    /// <summary>The process id once started (0 before).</summary>
    int Pid { get; }

    /// <summary>
    /// Completes when the process has ended (or, never started, was killed), with its exit status:
    /// the exit code, or 128 + signal for a signalled process. Never faults.
    /// </summary>
    Task<ProcessExit> Exited { get; }

    /// <summary>Starts the process and returns its pid and the streams the host relays.</summary>
    Task<StartedProcess> StartAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Sends <paramref name="signal"/> (a POSIX signal number) to the process, or with
    /// <paramref name="all"/> to every process of its container.
    /// </summary>
    Task SignalAsync(int signal, bool all, CancellationToken cancellationToken = default);

    /// <summary>Resizes the process's terminal.</summary>
    Task ResizeTerminalAsync(uint width, uint height, CancellationToken cancellationToken = default) =>
        throw new UnimplementedException("resize-pty");
}

/// <summary>A started process: its pid and its end of the standard streams (null where not redirected).</summary>
/// <param name="Pid">The process id.</param>
/// <param name="Stdin">Writable: what the host writes reaches the process's standard input.</param>
/// <param name="Stdout">Readable: the process's standard output, until it ends.</param>
/// <param name="Stderr">Readable: the process's standard error, until it ends.</param>
public sealed record StartedProcess(int Pid, Stream? Stdin, Stream? Stdout, Stream? Stderr);

/// <summary>How a process ended.</summary>
/// <param name="Status">Exit code, or 128 + signal number for a signalled process.</param>
/// <param name="ExitedAt">When the end was observed.</param>
public readonly record struct ProcessExit(int Status, DateTimeOffset ExitedAt);
