namespace PluggableShim.Abstractions;

/// <summary>What containerd asked for in a Create, after the host validated it.</summary>
public sealed class CreateContainerRequest
{
    /// <summary>The container id (validated: letters, digits, single <c>.</c> <c>_</c> <c>-</c> separators, at most 76 chars).</summary>
    public required string Id { get; init; }

    /// <summary>The containerd namespace.</summary>
    public required string Namespace { get; init; }

    /// <summary>The absolute path of the OCI bundle (holds <c>config.json</c>).</summary>
    public required string Bundle { get; init; }

    /// <summary>The rootfs mounts containerd passed (possibly empty).</summary>
    public IReadOnlyList<MountSpec> Rootfs { get; init; } = [];

    /// <summary>Whether the init process wants a terminal.</summary>
    public bool Terminal { get; init; }

    /// <summary>Runtime options from the request or from <c>start</c>, if any.</summary>
    public TypedPayload? Options { get; init; }

    /// <summary>Where the plugin reports out-of-memory kills of this container.</summary>
    public required IContainerEvents Events { get; init; }
}

/// <summary>An extra process to create in a running container.</summary>
public sealed class CreateExecRequest
{
    /// <summary>The exec id (validated like container ids).</summary>
    public required string ExecId { get; init; }

    /// <summary>The OCI runtime-spec <c>Process</c> as JSON.</summary>
    public required string ProcessSpecJson { get; init; }

    /// <summary>Whether the process wants a terminal.</summary>
    public bool Terminal { get; init; }
}

/// <summary>A mount as containerd describes it.</summary>
public sealed record MountSpec(string Type, string Source, string Target, IReadOnlyList<string> Options);

/// <summary>A protobuf payload with its type URL, e.g. runtime options or metrics.</summary>
/// <param name="TypeUrl">The type URL (containerd uses bare message names).</param>
/// <param name="Value">The serialized message.</param>
public sealed record TypedPayload(string TypeUrl, ReadOnlyMemory<byte> Value);

/// <summary>Events a plugin reports about a container besides process exits.</summary>
public interface IContainerEvents
{
    /// <summary>A process of the container was killed for lack of memory.</summary>
    void OutOfMemory();
}
