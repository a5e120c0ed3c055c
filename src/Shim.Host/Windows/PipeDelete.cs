using System.Diagnostics;
using System.Runtime.CompilerServices;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using PluggableShim.Contracts.Task;
using PluggableShim.Host.Cli;
using PluggableShim.Host.Grouping;
using PluggableShim.Host.Tasks;
using PluggableShim.Ttrpc;

namespace PluggableShim.Host.Windows;

/// <summary>
/// <c>delete</c> on the portable path: quiet when the group's daemon still serves; after a dead
/// daemon, kills the init process it recorded (pid and start time, through
/// <see cref="Process"/>) with its descendants, and removes the group's stale marker.
/// </summary>
internal static class PipeDelete
{
    private static readonly TimeSpan ServeCheckTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(10);

    public static int Run(ShimArguments args, string bundle, string group, Stream stdout, TextWriter? diagnostics)
    {
        string address = PortableHost.PipeAddress(args.Namespace, group);
        string marker = PortableHost.MarkerPath(args.Address, args.Namespace, group);
        int pid = 0;
        if (DaemonServes(marker, address, args.Id))
        {
            diagnostics?.WriteLine($"delete {args.Id}: the shim at {address} still serves; it owns the task's processes");
        }
        else
        {
            if (Directory.Exists(bundle) && BundleRecord.LiveInit(bundle) is { } orphan)
            {
                pid = orphan;
                Kill(orphan, args.Id, diagnostics);
            }

            if (Directory.Exists(PortableHost.StateDirectory))
            {
                RemoveStale(args, group, marker, address, diagnostics);
            }
        }

        new DeleteResponse
        {
            Pid = (uint)pid,
            ExitStatus = DeleteAction.KilledStatus,
            ExitedAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
        }.WriteTo(stdout);
        stdout.Flush();
        return 0;
    }

    // Under the group lock: a start may be bringing up a new daemon for this group. containerd
    // needs delete to succeed, so a lock held too long skips this tidying rather than failing.
    private static void RemoveStale(ShimArguments args, string group, string marker, string address, TextWriter? diagnostics)
    {
        GroupLock held;
        try
        {
            held = GroupLock.AcquireAsync(GroupLock.PathFor(marker), LockTimeout).GetAwaiter().GetResult();
        }
        catch (TimeoutException ex)
        {
            diagnostics?.WriteLine($"delete {args.Id}: stale marker left in place: {ex.Message}");
            return;
        }

        using (held)
        {
            if (!DaemonServes(marker, address, args.Id))
            {
                File.Delete(marker);
                PortableHost.RemoveEmulatedPipe(PortableHost.PipeName(args.Namespace, group));
                PortableHost.RemoveEmulatedPipe(PortableHost.LogPipeName(args.Namespace, args.Id));
                held.DeleteFile();
            }
        }
    }

    private static void Kill(int pid, string id, TextWriter? diagnostics)
    {
        try
        {
            using Process orphan = Process.GetProcessById(pid);
            orphan.Kill(entireProcessTree: true);
            diagnostics?.WriteLine($"delete {id}: killed init process {pid} left by a dead shim");
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            diagnostics?.WriteLine($"delete {id}: init process {pid} could not be killed: {ex.Message}");
        }
    }

    // No marker, or its daemon is gone: nothing serves (a pipe cannot be probed without
    // connecting). Otherwise only an answer counts: a dying daemon may still hold its pipe.
    private static bool DaemonServes(string marker, string address, string id)
    {
        if (!PortableHost.MarkerNamesLiveProcess(marker))
        {
            return false;
        }

        try
        {
            return System.Threading.Tasks.Task.Run(async () =>
            {
                TtrpcClient client = await TtrpcClient.ConnectAsync(address).ConfigureAwait(false);
                await using ConfiguredAsyncDisposable dispose = client.ConfigureAwait(false);
                await new Contracts.Task.Task.TaskClient(client).ConnectAsync(
                    new ConnectRequest { Id = id }, deadline: DateTime.UtcNow + ServeCheckTimeout).ConfigureAwait(false);
                return true;
            }).GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is RpcException or IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
