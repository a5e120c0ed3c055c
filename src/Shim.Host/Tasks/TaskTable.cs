using Google.Protobuf;
using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;
using PluggableShim.Contracts.Events;
using PluggableShim.Contracts.Types;
using PluggableShim.Host.Cli;
using PluggableShim.Host.Events;
using PluggableShim.Host.Grouping;
using PluggableShim.Host.IO;
using PluggableShim.Host.Tasks.Internal;

namespace PluggableShim.Host.Tasks;

/// <summary>
/// The containers this daemon serves and the Task API's state machine over them, the same for
/// every plugin: created → running ⇄ paused → stopped → deleted.
/// </summary>
/// <remarks>
/// Exit handling is the delicate part. Each process gets an exit watcher as soon as it is created
/// (before it starts, so no exit can be missed). The watcher records an exit only after:
/// the start event was queued (exit follows start), the process's output reached the client
/// (bounded), and, for an init process, every exec of the container has exited and been reported
/// (execs' exits come before their init's). Wait returns only once the exit event is queued.
/// No lock is held across a plugin call or IO.
/// </remarks>
internal sealed class TaskTable
{
    private readonly IContainerRuntime _runtime;
    private readonly IEventPublisher _events;
    private readonly ShimOptions _options;
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly GroupMembership? _membership;
    private readonly Lock _gate = new();

    // Guarded by _gate. A null value reserves an id whose Create is under way.
    private readonly Dictionary<string, ContainerTask?> _containers = new(StringComparer.Ordinal);

    public TaskTable(
        IContainerRuntime runtime,
        IEventPublisher events,
        ShimOptions options,
        ILoggerFactory loggerFactory,
        GroupMembership? membership = null)
    {
        _membership = membership;
        _runtime = runtime;
        _events = events;
        _options = options;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<TaskTable>();
    }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _containers.Count;
            }
        }
    }

    public PluginInfo Plugin => _options.Plugin;

    public async Task<ContainerTask> CreateAsync(
        string id,
        string bundle,
        IReadOnlyList<Mount> rootfs,
        StdioPaths stdio,
        TypedPayload? options,
        string checkpoint,
        CancellationToken cancellationToken)
    {
        Identifiers.Validate(id, "container id");
        if (!Path.IsPathFullyQualified(bundle) || !Directory.Exists(bundle))
        {
            throw new InvalidArgumentException($"bundle \"{bundle}\" is not an existing absolute directory");
        }

        if (checkpoint.Length > 0)
        {
            RequireCapability(TaskCapabilities.Checkpoint, "restore from checkpoint");
        }

        if (stdio.Terminal)
        {
            RequireCapability(TaskCapabilities.Terminal, "terminal");
        }

        lock (_gate)
        {
            if (!_containers.TryAdd(id, null))
            {
                throw new AlreadyExistsException($"task {id} already exists");
            }
        }

        if (_membership is not null && !_membership.TaskAdded(id))
        {
            lock (_gate)
            {
                _containers.Remove(id);
            }

            throw new FailedPreconditionException($"this shim is exiting; task {id} cannot be created here");
        }

        ProcessIo? io = null;
        IRuntimeContainer? container = null;
        try
        {
            var ioContext = new IoContext(id, _options.Namespace, _options.IoOpenTimeout);
            io = await ProcessIo.OpenAsync(stdio, ioContext, _logger, cancellationToken).ConfigureAwait(false);
            container = await _runtime.CreateAsync(
                new CreateContainerRequest
                {
                    Id = id,
                    Namespace = _options.Namespace,
                    Bundle = bundle,
                    Rootfs = [.. rootfs.Select(m => new MountSpec(m.Type, m.Source, m.Target, [.. m.Options]))],
                    Terminal = stdio.Terminal,
                    Options = options ?? _options.StartOptions,
                    Events = new OomReporter(this, id),
                },
                cancellationToken).ConfigureAwait(false);

            var init = new ProcessTask(id, string.Empty, container.Init, io, stdio);
            var entry = new ContainerTask(id, bundle, container, init) { Rootfs = rootfs };
            lock (_gate)
            {
                _containers[id] = entry;
            }

            _ = WatchExitAsync(entry, init);
            _events.Publish(EventTopics.Create, new TaskCreate
            {
                ContainerId = id,
                Bundle = bundle,
                Rootfs = { rootfs },
                Io = new TaskIO { Stdin = stdio.Stdin, Stdout = stdio.Stdout, Stderr = stdio.Stderr, Terminal = stdio.Terminal },
                Checkpoint = checkpoint,
                Pid = (uint)init.Runtime.Pid,
            });
            TasksLog.Created(_logger, id, init.Runtime.Pid);
            return entry;
        }
        catch
        {
            lock (_gate)
            {
                _containers.Remove(id);
            }

            _membership?.TaskRemoved(id);

            if (container is not null)
            {
                await container.DisposeAsync().ConfigureAwait(false);
            }

            if (io is not null)
            {
                await io.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>What Wait reports for a process whose Start failed.</summary>
    public const int FailedStartStatus = 255;

    public async Task<int> StartAsync(string id, string execId, CancellationToken cancellationToken)
    {
        ContainerTask container = Get(id);
        ProcessTask process = container.Find(execId);
        if (!process.IsInit && container.Init.State != ProcessState.Running)
        {
            throw new FailedPreconditionException($"task {id} is not running; cannot start exec {execId}");
        }

        if (!process.TryBeginStart())
        {
            throw new FailedPreconditionException($"process {Describe(process)} was already started");
        }

        try
        {
            // Checked again now that this start is claimed: the init may have died meanwhile, and
            // its death reaps only the execs that started (or are starting) before it.
            if (!process.IsInit && container.Init.State != ProcessState.Running)
            {
                throw new FailedPreconditionException($"task {id} is not running; cannot start exec {execId}");
            }

            StartedProcess started = await process.Runtime.StartAsync(cancellationToken).ConfigureAwait(false);
            process.MarkRunning(started.Pid);
            process.Io.Attach(started);
            if (process.IsInit)
            {
                BundleRecord.Write(container.Bundle, started.Pid);
                _events.Publish(EventTopics.Start, new TaskStart { ContainerId = id, Pid = (uint)started.Pid });
            }
            else
            {
                _events.Publish(EventTopics.ExecStarted, new TaskExecStarted
                {
                    ContainerId = id,
                    ExecId = execId,
                    Pid = (uint)started.Pid,
                });
            }

            TasksLog.Started(_logger, id, execId, started.Pid);
            return started.Pid;
        }
        catch (Exception) when (process.State == ProcessState.Created)
        {
            // Nothing runs: close our ends of its IO so the client's readers see EOF (ctr waits
            // for that before it deletes the process), and let Wait answer.
            process.StartFailed(new ProcessExit(FailedStartStatus, DateTimeOffset.UtcNow));
            await process.Io.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        finally
        {
            process.StartSettled();
        }
    }

    public async Task ExecAsync(string id, string execId, StdioPaths stdio, string specJson, CancellationToken cancellationToken)
    {
        RequireCapability(TaskCapabilities.Exec, "exec");
        Identifiers.Validate(execId, "exec id");
        if (stdio.Terminal)
        {
            RequireCapability(TaskCapabilities.Terminal, "terminal");
        }

        ContainerTask container = Get(id);
        if (container.Init.State != ProcessState.Running)
        {
            throw new FailedPreconditionException($"task {id} is not running; cannot exec");
        }

        if (!container.TryReserveExec(execId))
        {
            throw new AlreadyExistsException($"exec {execId} already exists in task {id}");
        }

        ProcessIo? io = null;
        try
        {
            var ioContext = new IoContext(id, _options.Namespace, _options.IoOpenTimeout);
            io = await ProcessIo.OpenAsync(stdio, ioContext, _logger, cancellationToken).ConfigureAwait(false);
            IRuntimeProcess runtime = await container.Runtime.CreateExecAsync(
                new CreateExecRequest { ExecId = execId, ProcessSpecJson = specJson, Terminal = stdio.Terminal },
                cancellationToken).ConfigureAwait(false);
            var exec = new ProcessTask(id, execId, runtime, io, stdio);
            container.CompleteExec(exec);
            _ = WatchExitAsync(container, exec);
            _events.Publish(EventTopics.ExecAdded, new TaskExecAdded { ContainerId = id, ExecId = execId });
        }
        catch
        {
            container.RemoveExec(execId);
            if (io is not null)
            {
                await io.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    public async Task KillAsync(string id, string execId, uint signal, bool all, CancellationToken cancellationToken)
    {
        ProcessTask process = Get(id).Find(execId);
        if (signal == 0 || signal > 64)
        {
            throw new InvalidArgumentException($"signal {signal} is not a valid signal number");
        }

        if (process.State == ProcessState.Stopped)
        {
            throw new NotFoundException($"process {Describe(process)} already finished");
        }

        await process.Runtime.SignalAsync((int)signal, all, cancellationToken).ConfigureAwait(false);
    }

    public async Task<ProcessTask> DeleteAsync(string id, string execId)
    {
        ContainerTask container = Get(id);
        ProcessTask process = container.Find(execId);
        if (process.State == ProcessState.Running)
        {
            throw new FailedPreconditionException($"process {Describe(process)} is running; kill it before deleting");
        }

        // Deleting under a Start would dispose IO and the runtime beneath it.
        if (process.StartInFlight || (process.IsInit && container.Execs().Any(e => e.StartInFlight)))
        {
            throw new FailedPreconditionException($"process {Describe(process)} is starting; try again once Start returned");
        }

        if (!process.IsInit)
        {
            container.RemoveExec(execId);
            await process.Io.DisposeAsync().ConfigureAwait(false);
            await container.Runtime.ReleaseExecAsync(process.Runtime).ConfigureAwait(false);
            return process;
        }

        lock (_gate)
        {
            if (!_containers.Remove(id))
            {
                throw new NotFoundException($"task {id} not found");
            }
        }

        _membership?.TaskRemoved(id);

        foreach (ProcessTask exec in container.Execs())
        {
            await exec.Io.DisposeAsync().ConfigureAwait(false);
        }

        await process.Io.DisposeAsync().ConfigureAwait(false);
        await container.Runtime.DisposeAsync().ConfigureAwait(false);
        _events.Publish(EventTopics.Delete, new TaskDelete
        {
            ContainerId = id,
            Pid = (uint)process.Pid,
            ExitStatus = process.ExitStatus,
            ExitedAt = process.ExitedAt ?? Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
        });
        TasksLog.Deleted(_logger, id);
        return process;
    }

    public async Task<ProcessExit> WaitAsync(string id, string execId, CancellationToken cancellationToken)
    {
        ProcessTask process = Get(id).Find(execId);
        return await process.ExitRecorded.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task PauseAsync(string id, CancellationToken cancellationToken)
    {
        RequireCapability(TaskCapabilities.Pause, "pause");
        ContainerTask container = Get(id);
        RequireRunning(container);
        if (container.Paused)
        {
            throw new FailedPreconditionException($"task {id} is already paused");
        }

        await container.Runtime.PauseAsync(cancellationToken).ConfigureAwait(false);
        if (container.Init.State != ProcessState.Running)
        {
            // It ended meanwhile: its exit is (or will be) published; a /tasks/paused after it would lie.
            throw new FailedPreconditionException($"task {id} exited while being paused");
        }

        container.Paused = true;
        _events.Publish(EventTopics.Paused, new TaskPaused { ContainerId = id });
    }

    public async Task ResumeAsync(string id, CancellationToken cancellationToken)
    {
        RequireCapability(TaskCapabilities.Pause, "resume");
        ContainerTask container = Get(id);
        if (!container.Paused)
        {
            throw new FailedPreconditionException($"task {id} is not paused");
        }

        await container.Runtime.ResumeAsync(cancellationToken).ConfigureAwait(false);
        container.Paused = false;
        _events.Publish(EventTopics.Resumed, new TaskResumed { ContainerId = id });
    }

    public async Task CheckpointAsync(string id, string path, TypedPayload? options, CancellationToken cancellationToken)
    {
        RequireCapability(TaskCapabilities.Checkpoint, "checkpoint");
        ContainerTask container = Get(id);
        await container.Runtime.CheckpointAsync(path, options, cancellationToken).ConfigureAwait(false);
        _events.Publish(EventTopics.Checkpointed, new TaskCheckpointed { ContainerId = id, Checkpoint = path });
    }

    public ContainerTask Get(string id)
    {
        // Judged like a Create's id: nothing odd (or megabytes long) reaches the log or the answer.
        Identifiers.Validate(id, "container id");

        lock (_gate)
        {
            return _containers.TryGetValue(id, out ContainerTask? container) && container is not null
                ? container
                : throw new NotFoundException($"task {id} not found");
        }
    }

    /// <summary>The task if it exists (created and not deleted), else null.</summary>
    public ContainerTask? Find(string id)
    {
        lock (_gate)
        {
            return _containers.TryGetValue(id, out ContainerTask? container) ? container : null;
        }
    }

    public ContainerTask[] All()
    {
        lock (_gate)
        {
            return [.. _containers.Values.OfType<ContainerTask>()];
        }
    }

    public void RequireCapability(TaskCapabilities capability, string operation)
    {
        if (!_options.Plugin.Capabilities.HasFlag(capability))
        {
            throw new UnimplementedException($"{operation} (plugin {_options.Plugin.Name})");
        }
    }

    private static void RequireRunning(ContainerTask container)
    {
        if (container.Init.State != ProcessState.Running)
        {
            throw new FailedPreconditionException($"task {container.Id} is not running");
        }
    }

    private static string Describe(ProcessTask process) =>
        process.IsInit ? process.ContainerId : process.ContainerId + "/" + process.ExecId;

    private async Task WatchExitAsync(ContainerTask container, ProcessTask process)
    {
        try
        {
            ProcessExit exit = await process.Runtime.Exited.ConfigureAwait(false);
            await process.WaitForStartToSettle().ConfigureAwait(false);
            if (process.HasStartFailed)
            {
                return; // Wait was answered then; it never started, so no exit is published.
            }

            if (process.State == ProcessState.Running)
            {
                try
                {
                    await process.Io.OutputDrained.WaitAsync(_options.OutputDrainTimeout).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is TimeoutException or IOException or ObjectDisposedException)
                {
                    // The exit is reported regardless: a relay problem must not hide it.
                    TasksLog.OutputNotDrained(_logger, process.ContainerId, process.ExecId, _options.OutputDrainTimeout.TotalSeconds);
                }
            }

            if (process.IsInit)
            {
                // When a container's init dies its other processes die with it (as a PID namespace
                // does), and their exits are reported first.
                await ReapExecsAsync(container).ConfigureAwait(false);
            }

            Finish(container, process, exit);
        }
        catch (Exception ex)
        {
            // Never leave a process Running for good: it could then not be deleted.
            TasksLog.ExitHandlingFailed(_logger, container.Id, process.ExecId, ex);
            Finish(container, process, process.Exit ?? new ProcessExit(255, DateTimeOffset.UtcNow));
        }
    }

    private void Finish(ContainerTask container, ProcessTask process, ProcessExit exit)
    {
        process.RecordExit(exit);
        if (process.IsInit)
        {
            container.Paused = false;
        }

        // No exit for an exec that was never started (it is killed with its container), nor
        // after its container's /tasks/delete.
        bool deleted;
        lock (_gate)
        {
            deleted = !_containers.TryGetValue(container.Id, out ContainerTask? current) || !ReferenceEquals(current, container);
        }

        if (!deleted && (process.IsInit || process.StartRequested))
        {
            _events.Publish(EventTopics.Exit, new TaskExit
            {
                ContainerId = container.Id,
                Id = process.IsInit ? container.Id : process.ExecId,
                Pid = (uint)process.Pid,
                ExitStatus = (uint)exit.Status,
                ExitedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(exit.ExitedAt),
            });
        }

        TasksLog.Exited(_logger, container.Id, process.ExecId, exit.Status);
        process.ExitPublished(exit);
    }

    private static async Task ReapExecsAsync(ContainerTask container)
    {
        ProcessTask[] execs = container.Execs();

        // An exec whose Start is under way will run: wait for it so that its exit comes first too.
        await Task.WhenAll(execs.Select(e => e.WaitForStartToSettle())).ConfigureAwait(false);
        foreach (ProcessTask exec in execs.Where(e => e.State == ProcessState.Running))
        {
            try
            {
                await exec.Runtime.SignalAsync(9, all: false).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // It may have ended on its own meanwhile; whatever the plugin says, we wait for its exit.
            }
        }

        await Task.WhenAll(execs.Where(e => e.StartRequested).Select(e => e.ExitRecorded))
            .ConfigureAwait(false);
    }

    private void PublishOom(string id) => _events.Publish(EventTopics.Oom, new TaskOOM { ContainerId = id });

    private sealed class OomReporter(TaskTable owner, string id) : IContainerEvents
    {
        public void OutOfMemory() => owner.PublishOom(id);
    }
}
