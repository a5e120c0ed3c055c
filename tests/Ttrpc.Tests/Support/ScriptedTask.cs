using Grpc.Core;
using TaskApi = PluggableShim.Contracts.Task.Task;
using StateRequest = PluggableShim.Contracts.Task.StateRequest;
using StateResponse = PluggableShim.Contracts.Task.StateResponse;

namespace PluggableShim.Ttrpc.Tests.Support;

/// <summary>
/// A Task service whose State handler the test scripts; by default it echoes the id
/// back with pid 42. Every other Task method answers Unimplemented (the generated base).
/// </summary>
internal sealed class ScriptedTask : TaskApi.TaskBase
{
    public const string Service = "containerd.task.v2.Task";

    private readonly Lock _gate = new();

    // Guarded by _gate.
    private readonly List<string> _calls = [];

    public Func<StateRequest, ServerCallContext, Task<StateResponse>> OnState { get; set; } =
        (request, _) => Task.FromResult(new StateResponse { Id = request.Id, Pid = 42 });

    /// <summary>The ids of the State calls that reached the handler, in arrival order.</summary>
    public IReadOnlyList<string> Calls
    {
        get
        {
            lock (_gate)
            {
                return [.. _calls];
            }
        }
    }

    public override Task<StateResponse> State(StateRequest request, ServerCallContext context)
    {
        lock (_gate)
        {
            _calls.Add(request.Id);
        }

        return OnState(request, context);
    }
}
