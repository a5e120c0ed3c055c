using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using PluggableShim.Ttrpc;
using Google.Protobuf.WellKnownTypes;
using PluggableShim.Contracts.Task;
using PluggableShim.Host.Grouping;
using PluggableShim.Host.Posix;
using PluggableShim.Host.Tasks;

namespace PluggableShim.Host.Cli;

/// <summary>
/// <c>delete</c>: containerd runs it after a shim's connection dropped, and CRI for every
/// container. It must succeed quietly for a task already gone, and clean up after a dead daemon:
/// the init process it left behind and its socket.
/// </summary>
internal static class DeleteAction
{
    public const int KilledStatus = 128 + 9;
    private static readonly TimeSpan ServeCheckTimeout = TimeSpan.FromSeconds(5);

    public static int Run(ShimArguments args, Stream stdout, TextWriter? diagnostics = null)
    {
        Identifiers.Validate(args.Id, "container id");
        Identifiers.ValidateNamespace(args.Namespace);
        string bundle = args.Bundle.Length > 0 ? args.Bundle : Directory.GetCurrentDirectory();
        int pid = 0;

        // A pod's containers share their sandbox's daemon; its spec says which.
        string group = GroupOf(bundle, args.Id);
#if !LAUNCHER
        if (Windows.PortableHost.Enabled)
        {
            return Windows.PipeDelete.Run(args, bundle, group, stdout, diagnostics);
        }
#endif
        string socket = ShimSocket.PathFor(args.Address, args.Namespace, group);
        if (DaemonServes(socket, args.Id))
        {
            // containerd shows this among its "cleanup warnings".
            diagnostics?.WriteLine($"delete {args.Id}: the shim at {socket} still serves; it owns the task's processes");
        }
        else
        {
            if (Directory.Exists(bundle) && BundleRecord.LiveInit(bundle) is { } orphan)
            {
                pid = orphan;
                bool leadsGroup = BundleRecord.LeadsGroup(orphan); // asked before it dies
                Native.Kill(orphan, 9);
                if (leadsGroup)
                {
                    // Its whole process group goes too (the Fake plugin starts inits as group leaders).
                    Native.Kill(-orphan, 9);
                }

                diagnostics?.WriteLine($"delete {args.Id}: killed init process {orphan} left by a dead shim");
            }

            RemoveDeadSockets(socket, args.Id, diagnostics);
        }

        var response = new DeleteResponse
        {
            Pid = (uint)pid,
            ExitStatus = KilledStatus,
            ExitedAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
        };
        response.WriteTo(stdout);
        stdout.Flush();
        return 0;
    }

    /// <summary>
    /// Removes a dead daemon's sockets and lock, under the group lock: a start may be bringing up a
    /// new daemon at this path. A lock held too long leaves them (the next start replaces them):
    /// delete must still answer, since containerd only warns about a failed delete.
    /// </summary>
    private static void RemoveDeadSockets(string socket, string id, TextWriter? diagnostics)
    {
        try
        {
            using GroupLock held = GroupLock.AcquireAsync(GroupLock.PathFor(socket), TimeSpan.FromSeconds(10)).GetAwaiter().GetResult();
            if (!DaemonServes(socket, id))
            {
                File.Delete(socket);
                foreach (string grpcSocket in StartOutput.GrpcSocketsOf(socket))
                {
                    File.Delete(grpcSocket); // a dead gRPC-mode daemon's second socket
                }

                held.DeleteFile();
            }
        }
        catch (TimeoutException ex)
        {
            diagnostics?.WriteLine($"delete {id}: left the dead shim's socket {socket} in place: {ex.Message}");
        }
    }

    // containerd runs delete the moment its connection to a dead daemon drops, when the dying
    // process may still hold its listening socket: accepting is not serving. Only an answer is.
    private static bool DaemonServes(string socket, string id)
    {
        if (!ShimSocket.Answers(socket))
        {
            return false;
        }

        try
        {
            return System.Threading.Tasks.Task.Run(async () =>
            {
                TtrpcClient client = await TtrpcClient.ConnectAsync("unix://" + socket).ConfigureAwait(false);
                await using System.Runtime.CompilerServices.ConfiguredAsyncDisposable dispose = client.ConfigureAwait(false);
                await new Contracts.Task.Task.TaskClient(client).ConnectAsync(
                    new ConnectRequest { Id = id }, deadline: DateTime.UtcNow + ServeCheckTimeout).ConfigureAwait(false);
                return true;
            }).GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is RpcException or SocketException or IOException)
        {
            return false;
        }
    }

    // delete must succeed for whatever is left of a bundle: a spec it cannot read names no group.
    private static string GroupOf(string bundle, string id)
    {
        try
        {
            return Directory.Exists(bundle) ? ShimGroup.Of(bundle, id) : id;
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException or UnauthorizedAccessException
                                       or PluggableShim.Abstractions.InvalidArgumentException)
        {
            return id;
        }
    }
}
