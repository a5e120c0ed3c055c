namespace PluggableShim.Testing.Containerd;

/// <summary>
/// A running containerd that tests drive through <c>ctr</c>. <see cref="LocalContainerd"/> runs
/// Debian's containerd on this machine; a variant inside a container (Testcontainers) would
/// implement the same face.
/// </summary>
public interface IContainerdHost : IAsyncDisposable
{
    /// <summary>containerd's gRPC socket, as containerd passes it to shims in <c>-address</c>.</summary>
    string Address { get; }

    /// <summary>containerd's ttrpc socket (events go there), as <c>TTRPC_ADDRESS</c>.</summary>
    string TtrpcAddress { get; }

    /// <summary>Every event containerd published since it started, in order.</summary>
    EventRecorder Events { get; }

    /// <summary>Runs <c>ctr --address A --namespace NS ARGS…</c>.</summary>
    Task<CommandResult> CtrAsync(
        string ns,
        IEnumerable<string> arguments,
        TimeSpan? timeout = null,
        string? stdin = null,
        CancellationToken cancellationToken = default);

    /// <summary>Imports the busybox test image into <paramref name="ns"/> (once) and returns its reference.</summary>
    Task<string> ImportBusyboxAsync(string ns, CancellationToken cancellationToken = default);

    /// <summary>The bundle folder containerd gives a shim for a task.</summary>
    string BundleOf(string ns, string id);
}
