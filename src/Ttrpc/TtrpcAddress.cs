namespace PluggableShim.Ttrpc;

/// <summary>The kinds of endpoint a ttrpc address can name.</summary>
public enum TtrpcAddressKind
{
    /// <summary>A Unix domain socket bound to a file path.</summary>
    UnixPath,

    /// <summary>A Linux abstract Unix socket (no file).</summary>
    UnixAbstract,

    /// <summary>A Windows named pipe.</summary>
    NamedPipe,
}

/// <summary>
/// A parsed ttrpc address. containerd writes <c>unix:///path</c> for shims it dials,
/// hands shims plain paths (<c>TTRPC_ADDRESS</c>), and on Windows uses <c>\\.\pipe\name</c>.
/// </summary>
public sealed record TtrpcAddress(TtrpcAddressKind Kind, string Target)
{
    private const string PipePrefix = @"\\.\pipe\";

    /// <summary>
    /// Parses an address. <c>unix://</c> and absolute paths are socket files; <c>\\.\pipe\</c> is
    /// a named pipe; anything else on Linux is an abstract socket name, which is how containerd
    /// 1.6 dials an address printed without a scheme.
    /// </summary>
    public static TtrpcAddress Parse(string address)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        if (address.StartsWith("unix://", StringComparison.Ordinal))
        {
            return new TtrpcAddress(TtrpcAddressKind.UnixPath, address["unix://".Length..]);
        }

        if (address.StartsWith(PipePrefix, StringComparison.OrdinalIgnoreCase))
        {
            return new TtrpcAddress(TtrpcAddressKind.NamedPipe, address[PipePrefix.Length..]);
        }

        if (address.StartsWith("npipe://", StringComparison.Ordinal))
        {
            return Parse(address["npipe://".Length..].Replace('/', '\\'));
        }

        if (Path.IsPathFullyQualified(address) || address.StartsWith("./", StringComparison.Ordinal))
        {
            return new TtrpcAddress(TtrpcAddressKind.UnixPath, address);
        }

        return new TtrpcAddress(TtrpcAddressKind.UnixAbstract, address.TrimStart('@'));
    }

    internal static string StripPipePrefix(string name) =>
        name.StartsWith(PipePrefix, StringComparison.OrdinalIgnoreCase) ? name[PipePrefix.Length..] : name;

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        TtrpcAddressKind.UnixPath => "unix://" + Target,
        TtrpcAddressKind.NamedPipe => PipePrefix + Target,
        _ => "@" + Target,
    };
}
