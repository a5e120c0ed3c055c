namespace PluggableShim.Host.IO;

/// <summary>Whose IO is opened, and how long each step may take.</summary>
/// <param name="ContainerId">The container (for an exec, its container): a logging program's CONTAINER_ID.</param>
/// <param name="Namespace">containerd's namespace: a logging program's CONTAINER_NAMESPACE.</param>
/// <param name="OpenTimeout">How long the client's FIFO ends, or a logging program's readiness, may take.</param>
internal sealed record IoContext(string ContainerId, string Namespace, TimeSpan OpenTimeout)
{
    /// <summary>How long a logging program may take to exit by itself once its input has ended.</summary>
    public TimeSpan LoggerExitGrace { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>How long a logging program gets after SIGTERM, and again after SIGKILL.</summary>
    public TimeSpan LoggerStopTimeout { get; init; } = TimeSpan.FromSeconds(2);
}
