using Grpc.Core;
using StateRequest = PluggableShim.Contracts.Task.StateRequest;
using StateResponse = PluggableShim.Contracts.Task.StateResponse;
using TaskApi = PluggableShim.Contracts.Task.Task;
using TaskStatus = PluggableShim.Contracts.Types.Status;

namespace PluggableShim.Ttrpc.Bench;

/// <summary>
/// A Task service that answers State with one fixed, realistically sized response (what a
/// runc shim reports for a running container) and leaves every other method Unimplemented.
/// </summary>
internal sealed class BenchTask : TaskApi.TaskBase
{
    public const string ContainerId = "4f1c2b9e7d3a";
    public const uint Pid = 4242;

    private static readonly Task<StateResponse> Answer = Task.FromResult(new StateResponse
    {
        Id = ContainerId,
        Bundle = "/run/containerd/io.containerd.runtime.v2.task/default/" + ContainerId,
        Pid = Pid,
        Status = TaskStatus.Running,
        Stdout = "/run/containerd/fifo/1234567/" + ContainerId + "-stdout",
        Stderr = "/run/containerd/fifo/1234567/" + ContainerId + "-stderr",
    });

    public override Task<StateResponse> State(StateRequest request, ServerCallContext context) => Answer;
}
