using Grpc.Core;
using PluggableShim.Contracts.Group;
using PluggableShim.Host.Cli;
using PluggableShim.Host.Tasks;

namespace PluggableShim.Host.Grouping;

/// <summary>The daemon's <c>pluggableshim.v1.Group</c> service: how <c>start</c> joins a running daemon.</summary>
/// <param name="membership">The daemon's containers.</param>
/// <param name="grpcSocket">The daemon's gRPC socket, told to joiners; empty when it serves ttrpc only.</param>
internal sealed class GroupService(GroupMembership membership, string grpcSocket = "") : Group.GroupBase
{
    public override Task<JoinResponse> Join(JoinRequest request, ServerCallContext context)
    {
        try
        {
            Identifiers.Validate(request.ContainerId, "container id");
            if (request.Bundle.Length > 0 && (!Path.IsPathFullyQualified(request.Bundle) || !Directory.Exists(request.Bundle)))
            {
                throw new PluggableShim.Abstractions.InvalidArgumentException(
                    $"bundle \"{request.Bundle}\" is not an existing absolute directory");
            }

            if (request.WantGrpc && grpcSocket.Length == 0)
            {
                throw new PluggableShim.Abstractions.FailedPreconditionException(
                    "this shim's daemon does not serve gRPC, which the container's startOutput asks for");
            }

            int? members = membership.Join(request.ContainerId, request.Plugin, request.Bundle.Length > 0 ? request.Bundle : null);
            return members is { } count
                ? Task.FromResult(new JoinResponse { ShimPid = (uint)Environment.ProcessId, Members = (uint)count, GrpcAddress = grpcSocket })
                : throw new RpcException(new Status(StatusCode.Unavailable, "shim is exiting"));
        }
        catch (Exception ex) when (TaskService.ToStatus(ex) is { } status)
        {
            throw new RpcException(status);
        }
    }
}
