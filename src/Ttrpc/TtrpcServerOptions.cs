namespace PluggableShim.Ttrpc;

/// <summary>Settings of a <see cref="TtrpcServer"/>.</summary>
public sealed class TtrpcServerOptions
{
    /// <summary>
    /// Refuse Unix socket peers whose uid differs from this process's effective uid,
    /// as containerd and its Go shims do on Linux. Ignored where the peer's uid is unknown.
    /// </summary>
    public bool RequireSameUser { get; init; }

    /// <summary>The clock behind request deadlines (timeout_nano).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}
