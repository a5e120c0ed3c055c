using System.Text.Json;

namespace PluggableShim.Conformance;

/// <summary>
/// What a shim's <c>start</c> printed, parsed as containerd parses it: a plain address (ttrpc,
/// Task API v2), or bootstrap JSON <c>{"version":2|3,"address":…,"protocol":"ttrpc"|"grpc"}</c>
/// (version 3 means the service is <c>containerd.task.v3.Task</c>).
/// </summary>
/// <param name="Protocol">"ttrpc" or "grpc".</param>
/// <param name="Version">The bootstrap version: 2 for a plain address.</param>
/// <param name="Address">The address as printed (<c>unix:///…</c> for ttrpc, a raw path for gRPC).</param>
/// <param name="IsJson">Whether start printed JSON rather than a plain address.</param>
public sealed record ShimAddress(string Protocol, int Version, string Address, bool IsJson)
{
    /// <summary>The Task service's full name at this address.</summary>
    public string TaskService => Version >= 3 ? "containerd.task.v3.Task" : "containerd.task.v2.Task";

    /// <summary>The socket's path, with any <c>unix://</c> scheme taken off.</summary>
    public string SocketPath => Address.StartsWith("unix://", StringComparison.Ordinal) ? Address["unix://".Length..] : Address;

    /// <summary>Parses start's stdout; throws <see cref="FormatException"/> for anything containerd would not take.</summary>
    public static ShimAddress Parse(string stdout)
    {
        ArgumentNullException.ThrowIfNull(stdout);
        string text = stdout.Trim();
        if (text.Length == 0)
        {
            throw new FormatException("start printed nothing");
        }

        if (!text.StartsWith('{'))
        {
            return new ShimAddress("ttrpc", 2, text, IsJson: false);
        }

        try
        {
            using JsonDocument json = JsonDocument.Parse(text);
            JsonElement root = json.RootElement;
            int version = root.GetProperty("version").GetInt32();
            string address = root.GetProperty("address").GetString() ?? "";
            string protocol = root.TryGetProperty("protocol", out JsonElement p) ? p.GetString() ?? "ttrpc" : "ttrpc";
            if (version is not (2 or 3) || address.Length == 0 || protocol is not ("ttrpc" or "grpc"))
            {
                throw new FormatException($"start printed bootstrap JSON containerd would refuse: {text}");
            }

            return new ShimAddress(protocol, version, address, IsJson: true);
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new FormatException($"start printed malformed bootstrap JSON: {text}", ex);
        }
    }

    /// <summary>Connects a client to the printed address over its protocol.</summary>
    /// <param name="cancellationToken">Ends the dial.</param>
    public Task<ShimConnection> ConnectAsync(CancellationToken cancellationToken = default) =>
        ShimConnection.ConnectAsync(this, cancellationToken);
}
