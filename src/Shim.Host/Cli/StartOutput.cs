using System.Buffers;
using System.Text;
using System.Text.Json;

namespace PluggableShim.Host.Cli;

/// <summary>
/// What <c>start</c> prints, chosen by the shim config's <c>"startOutput"</c>, since containerd's
/// environment cannot tell 1.7 from 2.x (<c>MAX_SHIM_VERSION</c> is 2 on both):
/// <list type="bullet">
/// <item><c>"address"</c> (the default): the plain <c>unix://</c> address, ttrpc, which every containerd accepts;</item>
/// <item><c>"json-v2-ttrpc"</c>, <c>"json-v2-grpc"</c>: <c>{"version":2,…}</c> (1.7 and later; Task API v2);</item>
/// <item><c>"json-v3-ttrpc"</c>, <c>"json-v3-grpc"</c>: <c>{"version":3,…}</c> (2.x; Task API v3, which 2.x requires for gRPC).</item>
/// </list>
/// A gRPC form makes the daemon serve gRPC on a second socket beside its ttrpc one.
/// </summary>
internal sealed record StartOutput(int Version, bool Grpc)
{
    /// <summary>The config key, documented in the README.</summary>
    public const string ConfigKey = "startOutput";

    /// <summary>The plain address.</summary>
    public static readonly StartOutput Plain = new(0, Grpc: false);

    /// <summary>Reads the config's value; null or empty is the plain address.</summary>
    public static StartOutput Parse(string? value) => value switch
    {
        null or "" or "address" => Plain,
        "json-v2-ttrpc" => new StartOutput(2, Grpc: false),
        "json-v2-grpc" => new StartOutput(2, Grpc: true),
        "json-v3-ttrpc" => new StartOutput(3, Grpc: false),
        "json-v3-grpc" => new StartOutput(3, Grpc: true),
        _ => throw new InvalidDataException(
            $"shim config: {ConfigKey} \"{value}\" is not one of address, json-v2-ttrpc, json-v2-grpc, json-v3-ttrpc, json-v3-grpc"),
    };

    /// <summary>
    /// The bytes to print: <paramref name="ttrpcAddress"/> (<c>unix:///…</c>) for the ttrpc forms;
    /// <paramref name="grpcSocket"/>, a raw path, for the gRPC forms.
    /// </summary>
    public string Format(string ttrpcAddress, string? grpcSocket)
    {
        if (Version == 0)
        {
            return ttrpcAddress;
        }

        if (Grpc && string.IsNullOrEmpty(grpcSocket))
        {
            throw new InvalidOperationException("a gRPC start output needs the daemon's gRPC socket");
        }

        // Utf8JsonWriter: no reflection, so the NativeAOT launcher can write it.
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("version", Version);
            json.WriteString("address", Grpc ? grpcSocket : ttrpcAddress);
            json.WriteString("protocol", Grpc ? "grpc" : "ttrpc");
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>The gRPC socket of a daemon, beside its ttrpc socket; unique per daemon, so that one
    /// daemon's listener going away never unlinks a successor's socket.</summary>
    public static string GrpcSocketFor(string ttrpcSocket) =>
        $"{ttrpcSocket}.{Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 4))}.grpc";

    /// <summary>The gRPC sockets any daemon of this ttrpc socket may have left behind.</summary>
    public static IEnumerable<string> GrpcSocketsOf(string ttrpcSocket)
    {
        string? directory = Path.GetDirectoryName(ttrpcSocket);
        return directory is null || !Directory.Exists(directory)
            ? []
            : Directory.EnumerateFiles(directory, Path.GetFileName(ttrpcSocket) + ".*.grpc");
    }
}
