using Grpc.Core;

namespace PluggableShim.Ttrpc.Internal;

/// <summary>What a handler sees of its ttrpc call: method, peer, deadline, metadata, cancellation.</summary>
internal sealed class TtrpcServerCallContext(
    string method,
    string peer,
    DateTime deadline,
    Metadata requestHeaders,
    CancellationToken cancellationToken) : ServerCallContext
{
    private Metadata? _trailers;

    protected override string MethodCore => method;

    protected override string HostCore => string.Empty;

    protected override string PeerCore => peer;

    protected override DateTime DeadlineCore => deadline;

    protected override Metadata RequestHeadersCore => requestHeaders;

    protected override CancellationToken CancellationTokenCore => cancellationToken;

    // ttrpc responses carry no metadata: trailers are accepted and dropped.
    protected override Metadata ResponseTrailersCore => _trailers ??= [];

    protected override Status StatusCore { get; set; }

    protected override WriteOptions? WriteOptionsCore { get; set; }

    protected override AuthContext AuthContextCore => new(null, []);

    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) =>
        throw new NotSupportedException("ttrpc has no context propagation");

    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
}
