using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using PluggableShim.Host.Cli;

namespace PluggableShim.Host.Events;

/// <summary>
/// Where the daemon's events go: containerd's gRPC socket when the daemon serves gRPC and
/// containerd offers one (BootstrapParams' containerd_grpc_address, else <c>GRPC_ADDRESS</c>);
/// otherwise its ttrpc socket (BootstrapParams' containerd_ttrpc_address, else
/// <c>TTRPC_ADDRESS</c>, else containerd's address plus <c>.ttrpc</c>).
/// </summary>
internal sealed record EventTarget(string Address, bool Grpc)
{
    public static EventTarget Choose(ShimArguments args, StartInput input)
    {
        string? grpc = input.GrpcAddress ?? NonEmpty(Environment.GetEnvironmentVariable("GRPC_ADDRESS"));
        if (args.GrpcSocket.Length > 0 && grpc is not null)
        {
            return new EventTarget(grpc, Grpc: true);
        }

        string ttrpc = input.TtrpcAddress ?? NonEmpty(Environment.GetEnvironmentVariable("TTRPC_ADDRESS")) ?? args.Address + ".ttrpc";
        return new EventTarget(ttrpc, Grpc: false);
    }

    public IEventPublisher Create(string ns, TimeProvider time, ILoggerFactory loggers) =>
        Grpc ? CreateGrpc(ns, time, loggers) : new TtrpcEventPublisher(Address, ns, time, loggers.CreateLogger<TtrpcEventPublisher>());

    // Apart, so that a ttrpc daemon never compiles a reference to Grpc.Net.Client.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private GrpcEventPublisher CreateGrpc(string ns, TimeProvider time, ILoggerFactory loggers) =>
        new GrpcEventPublisher(Address, ns, time, loggers.CreateLogger<GrpcEventPublisher>());

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
