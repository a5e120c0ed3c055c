using Google.Protobuf;
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

    public static int Run(ShimArguments args, Stream stdout, TextWriter? diagnostics = null)
    {
        Identifiers.Validate(args.Id, "container id");
        Identifiers.ValidateNamespace(args.Namespace);
        string bundle = args.Bundle.Length > 0 ? args.Bundle : Directory.GetCurrentDirectory();
        int pid = 0;

        // A pod's containers share their sandbox's daemon; its spec says which.
        string group = GroupOf(bundle, args.Id);
        string socket = ShimSocket.PathFor(args.Address, args.Namespace, group);
        if (ShimSocket.Answers(socket))
        {
            // containerd shows this among its "cleanup warnings".
            diagnostics?.WriteLine($"delete {args.Id}: the shim at {socket} still serves; it owns the task's processes");
        }
        else
        {
            if (Directory.Exists(bundle) && BundleRecord.LiveInit(bundle) is { } orphan)
            {
                pid = orphan;
                Native.Kill(orphan, 9);
                diagnostics?.WriteLine($"delete {args.Id}: killed init process {orphan} left by a dead shim");
            }

            // Under the group lock: a start may be bringing up a new daemon at this path.
            using (GroupLock held = GroupLock.AcquireAsync(GroupLock.PathFor(socket), TimeSpan.FromSeconds(10)).GetAwaiter().GetResult())
            {
                if (!ShimSocket.Answers(socket))
                {
                    File.Delete(socket);
                    held.DeleteFile();
                }
            }
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
