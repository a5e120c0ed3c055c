using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using PluggableShim.Contracts.Task;
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

    public static int Run(ShimArguments args, Stream stdout)
    {
        Identifiers.Validate(args.Id, "container id");
        Identifiers.ValidateNamespace(args.Namespace);
        string bundle = args.Bundle.Length > 0 ? args.Bundle : Directory.GetCurrentDirectory();
        int pid = 0;

        string socket = ShimSocket.PathFor(args.Address, args.Namespace, args.Id);
        bool daemonAlive = ShimSocket.Answers(socket);
        if (!daemonAlive)
        {
            if (Directory.Exists(bundle) && BundleRecord.LiveInit(bundle) is { } orphan)
            {
                pid = orphan;
                Native.Kill(orphan, 9);
            }

            File.Delete(socket);
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
}
