using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace PluggableShim.Runhcs.Standin;

/// <summary>
/// A log target as runhcs opens one: a Unix socket when the path is one (the plugin's log
/// listener off Windows), else a file opened for append. Entries are logrus-shaped JSON, or
/// logrus text with <c>--log-format text</c>.
/// </summary>
internal sealed class StandinLog : IDisposable
{
    private readonly Stream? _sink;
    private readonly bool _json;
    private readonly bool _debug;

    public StandinLog(string? path, bool json, bool debug)
    {
        _json = json;
        _debug = debug;
        if (string.IsNullOrEmpty(path) || path is "nul" or "/dev/null")
        {
            return;
        }

        _sink = File.Exists(path) && TryConnect(path) is { } socket
            ? socket
            : new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
    }

    public void Debug(string message, params (string Key, object Value)[] fields)
    {
        if (_debug)
        {
            Write("debug", message, fields);
        }
    }

    public void Info(string message, params (string Key, object Value)[] fields) => Write("info", message, fields);

    public void Error(string message) => Write("error", message, []);

    /// <summary>Writes text exactly as given (for tests of odd log lines).</summary>
    public void Raw(string text)
    {
        if (_sink is null)
        {
            return;
        }

        _sink.Write(Encoding.UTF8.GetBytes(text));
        _sink.Flush();
    }

    public void Dispose() => _sink?.Dispose();

    private void Write(string level, string message, (string Key, object Value)[] fields)
    {
        if (_sink is null)
        {
            return;
        }

        string time = DateTimeOffset.Now.ToString("yyyy-MM-ddTHH:mm:ss.fffffffzzz", CultureInfo.InvariantCulture);
        string line;
        if (_json)
        {
            var entry = new Dictionary<string, object> { ["level"] = level, ["msg"] = message, ["time"] = time };
            foreach ((string key, object value) in fields)
            {
                entry[key] = value;
            }

            line = JsonSerializer.Serialize(entry, StandinJson.Default.DictionaryStringObject);
        }
        else
        {
            line = $"time=\"{time}\" level={level} msg=\"{message.Replace("\"", "\\\"", StringComparison.Ordinal)}\"" +
                   string.Concat(fields.Select(f => $" {f.Key}={f.Value}"));
        }

        Raw(line + "\n");
    }

    /// <summary>An existing path that accepts a connection is a socket; anything else is a file.</summary>
    private static NetworkStream? TryConnect(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch (SocketException)
        {
            socket.Dispose();
            return null;
        }
    }
}
