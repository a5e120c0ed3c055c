using Google.Protobuf;
using Grpc.Core;

namespace PluggableShim.Ttrpc.Internal;

/// <summary>A unary method bound to the server, with its types erased for dispatch.</summary>
internal abstract class ServerMethod
{
    public abstract Task<ReadOnlyMemory<byte>> InvokeAsync(ByteString payload, ServerCallContext context);
}

internal sealed class UnaryMethod<TRequest, TResponse>(
    Method<TRequest, TResponse> method,
    UnaryServerMethod<TRequest, TResponse> handler) : ServerMethod
    where TRequest : class
    where TResponse : class
{
    public override async Task<ReadOnlyMemory<byte>> InvokeAsync(ByteString payload, ServerCallContext context)
    {
        TRequest request;
        try
        {
            request = method.RequestMarshaller.ContextualDeserializer(new PayloadDeserializationContext(payload.Memory));
        }
        catch (Exception ex) when (ex is InvalidProtocolBufferException or InvalidOperationException)
        {
            throw new RpcException(new Status(StatusCode.Internal, $"cannot decode {method.FullName} request: {ex.Message}"));
        }

        TResponse response = await handler(request, context).ConfigureAwait(false);
        return PayloadSerializationContext.Serialize(method.ResponseMarshaller, response);
    }
}
