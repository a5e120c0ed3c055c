using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using PluggableShim.Contracts.Task;
using PluggableShim.Host.Tasks;

namespace PluggableShim.Host.Transport;

/// <summary>
/// <c>containerd.task.v3.Task</c> (what containerd 2.x asks for with bootstrap version 3): the
/// same messages as v2 under a new package, so every method hands its call to the one
/// <see cref="TaskService"/>. Served on ttrpc and on gRPC alike.
/// </summary>
internal sealed class TaskV3Service(TaskService v2) : Contracts.Task.V3.Task.TaskBase
{
    public override Task<StateResponse> State(StateRequest request, ServerCallContext context) => v2.State(request, context);

    public override Task<CreateTaskResponse> Create(CreateTaskRequest request, ServerCallContext context) => v2.Create(request, context);

    public override Task<StartResponse> Start(StartRequest request, ServerCallContext context) => v2.Start(request, context);

    public override Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context) => v2.Delete(request, context);

    public override Task<PidsResponse> Pids(PidsRequest request, ServerCallContext context) => v2.Pids(request, context);

    public override Task<Empty> Pause(PauseRequest request, ServerCallContext context) => v2.Pause(request, context);

    public override Task<Empty> Resume(ResumeRequest request, ServerCallContext context) => v2.Resume(request, context);

    public override Task<Empty> Checkpoint(CheckpointTaskRequest request, ServerCallContext context) => v2.Checkpoint(request, context);

    public override Task<Empty> Kill(KillRequest request, ServerCallContext context) => v2.Kill(request, context);

    public override Task<Empty> Exec(ExecProcessRequest request, ServerCallContext context) => v2.Exec(request, context);

    public override Task<Empty> ResizePty(ResizePtyRequest request, ServerCallContext context) => v2.ResizePty(request, context);

    public override Task<Empty> CloseIO(CloseIORequest request, ServerCallContext context) => v2.CloseIO(request, context);

    public override Task<Empty> Update(UpdateTaskRequest request, ServerCallContext context) => v2.Update(request, context);

    public override Task<WaitResponse> Wait(WaitRequest request, ServerCallContext context) => v2.Wait(request, context);

    public override Task<StatsResponse> Stats(StatsRequest request, ServerCallContext context) => v2.Stats(request, context);

    public override Task<ConnectResponse> Connect(ConnectRequest request, ServerCallContext context) => v2.Connect(request, context);

    public override Task<Empty> Shutdown(ShutdownRequest request, ServerCallContext context) => v2.Shutdown(request, context);
}
