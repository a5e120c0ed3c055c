using System.Collections.Concurrent;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PluggableShim.Contracts.Events;

namespace PluggableShim.Host.Tests.Support;

/// <summary>
/// A stand-in for containerd's gRPC Events service (<c>containerd.services.events.v1.Events</c>):
/// Kestrel, HTTP/2 on a Unix socket, recording each Forward with the namespace header it came with.
/// </summary>
public sealed class GrpcEventsServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private GrpcEventsServer(WebApplication app, Recorder recorder)
    {
        _app = app;
        Received = recorder;
    }

    public Recorder Received { get; }

    /// <param name="refuseTopic">Forwards of this topic are answered InvalidArgument, as containerd answers a bad event.</param>
    public static async Task<GrpcEventsServer> StartAsync(string socketPath, string? refuseTopic = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k => k.ListenUnixSocket(socketPath, l => l.Protocols = HttpProtocols.Http2));
        builder.Logging.ClearProviders();
        builder.Services.AddRoutingCore();
        builder.Services.AddGrpc();
        var recorder = new Recorder(refuseTopic);
        builder.Services.AddSingleton(recorder);
        WebApplication app = builder.Build();
        app.UseRouting();
        app.MapGrpcService<Recorder>();
        await app.StartAsync();
        return new GrpcEventsServer(app, recorder);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>The Events service: what arrived, in order.</summary>
    public sealed class Recorder(string? refuseTopic) : Contracts.Events.Grpc.Events.EventsBase
    {
        private readonly ConcurrentQueue<(string? Namespace, Envelope Envelope)> _received = new();

        public IReadOnlyList<(string? Namespace, Envelope Envelope)> All => [.. _received];

        public override Task<Empty> Forward(ForwardRequest request, ServerCallContext context)
        {
            ArgumentNullException.ThrowIfNull(request);
            ArgumentNullException.ThrowIfNull(context);
            if (request.Envelope.Topic == refuseTopic)
            {
                throw new RpcException(new Status(StatusCode.InvalidArgument, "refused by the test"));
            }

            _received.Enqueue((context.RequestHeaders.GetValue("containerd-namespace"), request.Envelope));
            return Task.FromResult(new Empty());
        }
    }
}
