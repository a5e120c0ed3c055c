using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using PluggableShim.Contracts.Bootstrap;

namespace PluggableShim.Host.Cli;

/// <summary>
/// What containerd wrote on the stdin of <c>start</c>: a bare runtime-options <c>Any</c> (1.6 to
/// 2.2, possibly empty) or a <c>BootstrapParams</c> (2.3 and later) carrying the options as an
/// extension, with containerd's addresses and log level.
/// </summary>
/// <remarks>
/// Both are protobuf messages beginning with two length-delimited fields, so a bare Any parses
/// as BootstrapParams and the other way round. They are told apart by content: any field
/// numbered 3 or above means BootstrapParams (an Any has only two); with only fields 1 and 2,
/// it is BootstrapParams exactly when they equal the command line's <c>-id</c> and
/// <c>-namespace</c>, as containerd's own shims decide. Anything else is taken as an Any.
/// </remarks>
internal sealed record StartInput
{
    /// <summary>Where containerd's own extensions live; every other extension is the runtime options.</summary>
    private const string ContainerdExtensionPrefix = "containerd.io/";

    /// <summary>Which form arrived.</summary>
    public required StartInputForm Form { get; init; }

    /// <summary>The runtime options (bare Any, or the runtime-options extension); null when none came.</summary>
    public Any? RuntimeOptions { get; init; }

    /// <summary>The bootstrap parameters, when that form arrived.</summary>
    public BootstrapParams? Bootstrap { get; init; }

    /// <summary>containerd's ttrpc socket named by the bootstrap parameters, if any.</summary>
    public string? TtrpcAddress => Bootstrap is { ContainerdTtrpcAddress.Length: > 0 } b ? b.ContainerdTtrpcAddress : null;

    /// <summary>containerd's gRPC socket named by the bootstrap parameters, if any.</summary>
    public string? GrpcAddress => Bootstrap is { ContainerdGrpcAddress.Length: > 0 } b ? b.ContainerdGrpcAddress : null;

    /// <summary>Whether the bootstrap parameters ask for debug logging (Go slog's debug level or below).</summary>
    public bool Debug => Bootstrap is { LogLevel: <= -4 };

    /// <summary>The runtime options as the plugin gets them (<c>ShimOptions.StartOptions</c>); null when none came.</summary>
    public PluggableShim.Abstractions.TypedPayload? StartOptions =>
        RuntimeOptions is { } any ? new PluggableShim.Abstractions.TypedPayload(any.TypeUrl, any.Value.Memory) : null;

    /// <summary>The runtime options as serialized Any bytes (empty for none), the form plugin selection reads.</summary>
    public byte[] RuntimeOptionsBytes => RuntimeOptions?.ToByteArray() ?? [];

    /// <summary>Decodes stdin's bytes; throws <see cref="InvalidDataException"/> for bytes that are neither form.</summary>
    public static StartInput Decode(ReadOnlySpan<byte> bytes, string id, string ns)
    {
        if (bytes.IsEmpty)
        {
            return new StartInput { Form = StartInputForm.Empty };
        }

        bool looksLikeBootstrap;
        try
        {
            looksLikeBootstrap = HasFieldAboveTwo(bytes);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new InvalidDataException($"stdin is neither runtime options (Any) nor BootstrapParams: {ex.Message}", ex);
        }

        if (!looksLikeBootstrap)
        {
            // Only fields 1 and 2: the ambiguous case. BootstrapParams only if they name this very shim.
            try
            {
                looksLikeBootstrap = IdentityMatches(BootstrapParams.Parser.ParseFrom(bytes), id, ns);
            }
            catch (InvalidProtocolBufferException)
            {
                looksLikeBootstrap = false;
            }
        }

        if (looksLikeBootstrap)
        {
            BootstrapParams bootstrap = Parse(BootstrapParams.Parser, bytes, "BootstrapParams");
            if (!IdentityMatches(bootstrap, id, ns))
            {
                throw new InvalidDataException(
                    $"BootstrapParams on stdin name {Clip(bootstrap.Namespace)}/{Clip(bootstrap.InstanceId)}, the command line {ns}/{id}");
            }

            Any? options = bootstrap.Extensions
                .Select(e => e.Value)
                .FirstOrDefault(v => v is { TypeUrl.Length: > 0 } && !v.TypeUrl.StartsWith(ContainerdExtensionPrefix, StringComparison.Ordinal));
            return new StartInput { Form = StartInputForm.Bootstrap, Bootstrap = bootstrap, RuntimeOptions = options };
        }

        Any any = Parse(Any.Parser, bytes, "runtime options (Any)");
        return new StartInput { Form = StartInputForm.Any, RuntimeOptions = any.TypeUrl.Length > 0 ? any : null };
    }

    /// <summary>A value from stdin, cut short for an error line (containerd shows it to the user).</summary>
    private static string Clip(string value) => value.Length <= 76 ? value : value[..76] + "…";

    private static bool IdentityMatches(BootstrapParams bootstrap, string id, string ns) =>
        bootstrap.InstanceId == id && bootstrap.Namespace == ns;

    private static T Parse<T>(MessageParser<T> parser, ReadOnlySpan<byte> bytes, string what)
        where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new InvalidDataException($"stdin is not valid {what}: {ex.Message}", ex);
        }
    }

    /// <summary>Walks the top-level fields; true at the first one numbered above 2.</summary>
    private static bool HasFieldAboveTwo(ReadOnlySpan<byte> bytes)
    {
        var input = new CodedInputStream(bytes.ToArray());
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) > 2)
            {
                return true;
            }

            input.SkipLastField();
        }

        return false;
    }
}

/// <summary>The forms stdin of <c>start</c> takes.</summary>
internal enum StartInputForm
{
    /// <summary>Nothing (no runtime options, containerd 1.6 to 2.2).</summary>
    Empty,

    /// <summary>A bare runtime-options Any (containerd 1.6 to 2.2).</summary>
    Any,

    /// <summary>BootstrapParams (containerd 2.3 and later).</summary>
    Bootstrap,
}
