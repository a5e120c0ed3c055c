using Grpc.Core;

namespace PluggableShim.Ttrpc.Internal;

/// <summary>
/// The methods a server dispatches to, filled through <see cref="ServiceBinderBase"/> so that
/// a Grpc.Tools-generated <c>BindService(binder, impl)</c> binds a service class to ttrpc.
/// Binding happens before serving; lookups afterwards are lock-free reads.
/// </summary>
internal sealed class MethodRegistry : ServiceBinderBase
{
    private readonly Dictionary<string, Dictionary<string, ServerMethod>> _services = new(StringComparer.Ordinal);
    private volatile bool _frozen;

    public void Freeze() => _frozen = true;

    public ServerMethod? Find(string service, string method, out string? error)
    {
        if (!_services.TryGetValue(service, out Dictionary<string, ServerMethod>? methods))
        {
            error = $"service {service}: unimplemented";
            return null;
        }

        if (!methods.TryGetValue(method, out ServerMethod? found))
        {
            error = $"method {service}/{method}: unimplemented";
            return null;
        }

        error = null;
        return found;
    }

    public override void AddMethod<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        UnaryServerMethod<TRequest, TResponse>? handler)
    {
        ArgumentNullException.ThrowIfNull(method);
        ArgumentNullException.ThrowIfNull(handler);
        if (_frozen)
        {
            throw new InvalidOperationException("services must be bound before the ttrpc server starts serving");
        }

        if (!_services.TryGetValue(method.ServiceName, out Dictionary<string, ServerMethod>? methods))
        {
            methods = new Dictionary<string, ServerMethod>(StringComparer.Ordinal);
            _services.Add(method.ServiceName, methods);
        }

        methods[method.Name] = new UnaryMethod<TRequest, TResponse>(method, handler);
    }

    public override void AddMethod<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        ClientStreamingServerMethod<TRequest, TResponse>? handler) => throw StreamingNotSupported(method);

    public override void AddMethod<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        ServerStreamingServerMethod<TRequest, TResponse>? handler) => throw StreamingNotSupported(method);

    public override void AddMethod<TRequest, TResponse>(
        Method<TRequest, TResponse> method,
        DuplexStreamingServerMethod<TRequest, TResponse>? handler) => throw StreamingNotSupported(method);

    private static NotSupportedException StreamingNotSupported(IMethod method) =>
        new($"{method.FullName} is a streaming method; this ttrpc server carries unary calls only");
}
