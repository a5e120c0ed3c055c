using Grpc.Core;
using PluggableShim.Ttrpc;
using TaskClient = PluggableShim.Contracts.Task.Task.TaskClient;

namespace PluggableShim.Conformance;

/// <summary>
/// The one place that turns what <c>start</c> printed into a connection: the kit's tests see only
/// <see cref="CallInvoker"/> and <see cref="Task"/>. Today <c>start</c> prints a plain address
/// (<c>unix:///path</c>), which containerd 1.6 dials as ttrpc.
/// </summary>
/// <remarks>
/// The 1.7+ bootstrap answer (JSON <c>{"version":…,"address":…,"protocol":"ttrpc"|"grpc"}</c>) and a gRPC
/// transport belong here, not in the tests: for protocol grpc a gRPC channel's invoker would be
/// wrapped so that <c>/containerd.task.v2.Task/X</c> calls go to <c>/containerd.task.v3.Task/X</c>
/// (same messages), and <see cref="Task"/> keeps working unchanged.
/// </remarks>
public sealed class ShimConnection : IAsyncDisposable
{
    private readonly IAsyncDisposable _transport;

    private ShimConnection(string address, string protocol, string? socketPath, CallInvoker invoker, IAsyncDisposable transport)
    {
        Address = address;
        Protocol = protocol;
        SocketPath = socketPath;
        CallInvoker = invoker;
        Task = new TaskClient(invoker);
        _transport = transport;
    }

    /// <summary>The address the shim serves, as <c>start</c> gave it.</summary>
    public string Address { get; }

    /// <summary>The protocol spoken: <c>ttrpc</c> (or, once supported, <c>grpc</c>).</summary>
    public string Protocol { get; }

    /// <summary>The socket file behind <see cref="Address"/>, when it is one (the kit checks it is removed at exit).</summary>
    public string? SocketPath { get; }

    /// <summary>Calls to the shim, for any generated client.</summary>
    public CallInvoker CallInvoker { get; }

    /// <summary>The Task API client (<c>containerd.task.v2.Task</c> messages).</summary>
    public TaskClient Task { get; }

    /// <summary>Parses <c>start</c>'s output and dials what it names.</summary>
    /// <param name="startOutput">Everything <c>start</c> printed (stdout and stderr, as containerd reads them).</param>
    /// <param name="cancellationToken">Ends the dial.</param>
    public static async Task<ShimConnection> ConnectAsync(string startOutput, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(startOutput);
        string address = startOutput.Trim();
        if (address.StartsWith('{'))
        {
            // The 1.7+ bootstrap answer; see the remarks.
            throw new NotSupportedException($"start printed a bootstrap answer the kit cannot dial yet: {address}");
        }

        if (address.Length == 0 || address.Contains('\n', StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"start must print only the address; it printed \"{startOutput}\"");
        }

        TtrpcAddress parsed = TtrpcAddress.Parse(address);
        TtrpcClient client = await TtrpcClient.ConnectAsync(address, cancellationToken: cancellationToken).ConfigureAwait(false);
        string? socket = parsed.Kind == TtrpcAddressKind.UnixPath ? parsed.Target : null;
        return new ShimConnection(address, "ttrpc", socket, client, client);
    }

    /// <summary>Another connection to the same shim (containerd dials one per task).</summary>
    public Task<ShimConnection> ReconnectAsync(CancellationToken cancellationToken = default) =>
        ConnectAsync(Address, cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _transport.DisposeAsync();
}
