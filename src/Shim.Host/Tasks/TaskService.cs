using System.Runtime.CompilerServices;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;
using PluggableShim.Contracts.Task;
using PluggableShim.Contracts.Types;
using Status = Grpc.Core.Status;
using Task = System.Threading.Tasks.Task;
using PluggableShim.Host.IO;
using PluggableShim.Host.Tasks.Internal;
using PluggableShim.Host.Cli;
using PluggableShim.Host.Grouping;

namespace PluggableShim.Host.Tasks;

/// <summary>
/// containerd's Task API (<c>containerd.task.v2.Task</c>) over the <see cref="TaskTable"/>.
/// Transport-neutral: bound to ttrpc here, and to gRPC the same way. This is the one place
/// where exceptions become status codes.
/// </summary>
internal sealed class TaskService(
    TaskTable tasks,
    GroupMembership membership,
    ShimOptions options,
    ILogger<TaskService> logger)
    : Contracts.Task.Task.TaskBase
{
    private const string ProcessSpecType = "types.containerd.io/opencontainers/runtime-spec/1/Process";

    public override Task<CreateTaskResponse> Create(CreateTaskRequest request, ServerCallContext context) =>
        Guard(request.Id, string.Empty, async () =>
        {
            ContainerTask created = await tasks.CreateAsync(
                request.Id,
                request.Bundle,
                request.Rootfs,
                new StdioPaths(request.Stdin, request.Stdout, request.Stderr, request.Terminal),
                ToPayload(request.Options),
                request.Checkpoint,
                context.CancellationToken).ConfigureAwait(false);
            return new CreateTaskResponse { Pid = (uint)created.Init.Runtime.Pid };
        });

    public override Task<StartResponse> Start(StartRequest request, ServerCallContext context) =>
        Guard(request.Id, request.ExecId, async () =>
            new StartResponse { Pid = (uint)await tasks.StartAsync(request.Id, request.ExecId, context.CancellationToken).ConfigureAwait(false) });

    public override Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context) =>
        Guard(request.Id, request.ExecId, async () =>
        {
            ProcessTask deleted = await tasks.DeleteAsync(request.Id, request.ExecId).ConfigureAwait(false);
            return new DeleteResponse
            {
                Pid = (uint)deleted.Pid,
                ExitStatus = deleted.ExitStatus,
                ExitedAt = deleted.ExitedAt ?? Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
            };
        });

    public override Task<StateResponse> State(StateRequest request, ServerCallContext context) =>
        Guard(request.Id, request.ExecId, () =>
        {
            ContainerTask container = tasks.Get(request.Id);
            ProcessTask process = container.Find(request.ExecId);
            var response = new StateResponse
            {
                Id = process.IsInit ? container.Id : process.ExecId,
                ExecId = process.ExecId,
                Bundle = container.Bundle,
                Pid = (uint)process.Pid,
                Status = process.WireStatus(container.Paused),
                Stdin = process.Stdio.Stdin,
                Stdout = process.Stdio.Stdout,
                Stderr = process.Stdio.Stderr,
                Terminal = process.Stdio.Terminal,
                ExitStatus = process.ExitStatus,
                ExitedAt = process.ExitedAt,
            };
            return Task.FromResult(response);
        });

    public override Task<PidsResponse> Pids(PidsRequest request, ServerCallContext context) =>
        Guard(request.Id, string.Empty, async () =>
        {
            tasks.RequireCapability(TaskCapabilities.Pids, "pids");
            ContainerTask container = tasks.Get(request.Id);
            IReadOnlyList<int> pids = await container.Runtime.ListPidsAsync(context.CancellationToken).ConfigureAwait(false);
            var response = new PidsResponse();
            response.Processes.AddRange(pids.Select(pid => new ProcessInfo { Pid = (uint)pid }));
            return response;
        });

    public override Task<Empty> Pause(PauseRequest request, ServerCallContext context) =>
        Guard(request.Id, string.Empty, () => Done(tasks.PauseAsync(request.Id, context.CancellationToken)));

    public override Task<Empty> Resume(ResumeRequest request, ServerCallContext context) =>
        Guard(request.Id, string.Empty, () => Done(tasks.ResumeAsync(request.Id, context.CancellationToken)));

    public override Task<Empty> Checkpoint(CheckpointTaskRequest request, ServerCallContext context) =>
        Guard(request.Id, string.Empty, () =>
            Done(tasks.CheckpointAsync(request.Id, request.Path, ToPayload(request.Options), context.CancellationToken)));

    public override Task<Empty> Kill(KillRequest request, ServerCallContext context) =>
        Guard(request.Id, request.ExecId, () =>
            Done(tasks.KillAsync(request.Id, request.ExecId, request.Signal, request.All, context.CancellationToken)));

    public override Task<Empty> Exec(ExecProcessRequest request, ServerCallContext context) =>
        Guard(request.Id, request.ExecId, () =>
        {
            // The exec id names FIFOs and files: judge it before anything else.
            Identifiers.Validate(request.ExecId, "exec id");
            if (request.Spec is null || request.Spec.Value.IsEmpty)
            {
                throw new InvalidArgumentException("exec needs a process spec");
            }

            if (request.Spec.TypeUrl.Length > 0 && request.Spec.TypeUrl != ProcessSpecType)
            {
                throw new InvalidArgumentException($"exec spec has type {request.Spec.TypeUrl}, expected {ProcessSpecType}");
            }

            var stdio = new StdioPaths(request.Stdin, request.Stdout, request.Stderr, request.Terminal);
            return Done(tasks.ExecAsync(request.Id, request.ExecId, stdio, request.Spec.Value.ToStringUtf8(), context.CancellationToken));
        });

    public override Task<Empty> ResizePty(ResizePtyRequest request, ServerCallContext context) =>
        Guard(request.Id, request.ExecId, () =>
        {
            tasks.RequireCapability(TaskCapabilities.Terminal, "resize-pty");
            ProcessTask process = tasks.Get(request.Id).Find(request.ExecId);
            return Done(process.Runtime.ResizeTerminalAsync(request.Width, request.Height, context.CancellationToken));
        });

    public override Task<Empty> CloseIO(CloseIORequest request, ServerCallContext context) =>
        Guard(request.Id, request.ExecId, () =>
        {
            ProcessTask process = tasks.Get(request.Id).Find(request.ExecId);
            if (request.Stdin)
            {
                process.Io.CloseStdin();
            }

            return Task.FromResult(new Empty());
        });

    public override Task<Empty> Update(UpdateTaskRequest request, ServerCallContext context) =>
        Guard(request.Id, string.Empty, () =>
        {
            tasks.RequireCapability(TaskCapabilities.Update, "update");
            ContainerTask container = tasks.Get(request.Id);
            TypedPayload resources = ToPayload(request.Resources) ?? throw new InvalidArgumentException("update needs resources");
            return Done(container.Runtime.UpdateAsync(resources, request.Annotations, context.CancellationToken));
        });

    public override Task<WaitResponse> Wait(WaitRequest request, ServerCallContext context) =>
        Guard(request.Id, request.ExecId, async () =>
        {
            ProcessExit exit = await tasks.WaitAsync(request.Id, request.ExecId, context.CancellationToken).ConfigureAwait(false);
            return new WaitResponse { ExitStatus = (uint)exit.Status, ExitedAt = Timestamp.FromDateTimeOffset(exit.ExitedAt) };
        });

    public override Task<StatsResponse> Stats(StatsRequest request, ServerCallContext context) =>
        Guard(request.Id, string.Empty, async () =>
        {
            tasks.RequireCapability(TaskCapabilities.Stats, "stats");
            TypedPayload stats = await tasks.Get(request.Id).Runtime.StatsAsync(context.CancellationToken).ConfigureAwait(false);
            return new StatsResponse { Stats = new Any { TypeUrl = stats.TypeUrl, Value = ByteString.CopyFrom(stats.Value.Span) } };
        });

    public override Task<ConnectResponse> Connect(ConnectRequest request, ServerCallContext context) =>
        Guard(request.Id, string.Empty, () =>
        {
            // Answered at any time, for a task not created yet too: containerd reconnects with it.
            var response = new ConnectResponse { ShimPid = (uint)Environment.ProcessId, Version = options.Version };
            if (request.Id.Length > 0 && tasks.Find(request.Id) is { } task)
            {
                response.TaskPid = (uint)task.Init.Pid;
            }

            return Task.FromResult(response);
        });

    public override Task<Empty> Shutdown(ShutdownRequest request, ServerCallContext context) =>
        Guard(request.Id, string.Empty, () =>
        {
            // A daemon serving other tasks (or expecting a joined one) stays; the last Shutdown
            // ends it once answered.
            membership.ShutdownRequested(request.Id);

            return Task.FromResult(new Empty());
        });

    private static TypedPayload? ToPayload(Any? any) =>
        any is null || (any.TypeUrl.Length == 0 && any.Value.IsEmpty) ? null : new TypedPayload(any.TypeUrl, any.Value.Memory);

    private static async Task<Empty> Done(Task operation)
    {
        await operation.ConfigureAwait(false);
        return new Empty();
    }

    private async Task<T> Guard<T>(string id, string execId, Func<Task<T>> body, [CallerMemberName] string method = "")
    {
        TasksLog.Call(logger, method, id, execId);
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (Exception ex) when (ToStatus(ex) is { } status)
        {
            TasksLog.CallFailed(logger, method, status.StatusCode, status.Detail);
            throw new RpcException(status);
        }
        catch (Exception ex) when (ex is not RpcException and not OperationCanceledException)
        {
            TasksLog.CallCrashed(logger, method, ex);
            throw new RpcException(new Status(StatusCode.Unknown, $"{method}: {ex.Message}"));
        }
    }

    /// <summary>The status a failure becomes on the wire, for the exception types with a meaning.</summary>
    internal static Status? ToStatus(Exception ex) => ex switch
    {
        NotFoundException => new Status(StatusCode.NotFound, ex.Message),
        AlreadyExistsException => new Status(StatusCode.AlreadyExists, ex.Message),
        FailedPreconditionException => new Status(StatusCode.FailedPrecondition, ex.Message),
        InvalidArgumentException => new Status(StatusCode.InvalidArgument, ex.Message),
        UnimplementedException => new Status(StatusCode.Unimplemented, ex.Message),
        NotSupportedException => new Status(StatusCode.Unimplemented, ex.Message),
        _ => null,
    };
}
