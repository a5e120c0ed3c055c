using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace PluggableShim.Plugins.Runhcs.Internal;

/// <summary>
/// One line of a runhcs log decoded: runhcs writes logrus JSON (<c>level</c>, <c>msg</c>,
/// <c>time</c> in RFC 3339, any other fields). Decoding never fails: a line that is not such an
/// object becomes an entry carrying the raw text, so a broken or hostile writer cannot stop the
/// forwarding, and <c>fatal</c> or <c>panic</c> are merely Critical here.
/// </summary>
internal sealed record RunhcsLogEntry(
    LogLevel Level,
    string Message,
    DateTimeOffset? Time,
    IReadOnlyList<KeyValuePair<string, object?>> Fields)
{
    /// <summary>Longest field value kept; runhcs's stack traces can be long, a log line should not be.</summary>
    public const int MaxValueLength = 8 * 1024;

    /// <summary>Fields kept per entry, the rest dropped (and counted).</summary>
    public const int MaxFields = 32;

    /// <summary>Decodes one line (without its newline); null for a blank line.</summary>
    public static RunhcsLogEntry? Decode(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        string text = line.TrimEnd('\r', '\n');
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException)
        {
            return Raw(text, "text");
        }

        using (document)
        {
            return document.RootElement.ValueKind == JsonValueKind.Object
                ? FromObject(document.RootElement)
                : Raw(text, "json-" + document.RootElement.ValueKind.ToString().ToLowerInvariant());
        }
    }

    /// <summary>logrus level names, and the odd spellings other Go loggers use.</summary>
    public static LogLevel? LevelOf(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        "trace" => LogLevel.Trace,
        "debug" => LogLevel.Debug,
        "info" or "information" => LogLevel.Information,
        "warn" or "warning" => LogLevel.Warning,
        "error" or "err" => LogLevel.Error,
        "fatal" or "panic" or "critical" => LogLevel.Critical,
        _ => null,
    };

    private static RunhcsLogEntry Raw(string text, string format) =>
        new(LogLevel.Information, Truncate(text), null, [new("format", format)]);

    private static RunhcsLogEntry FromObject(JsonElement entry)
    {
        LogLevel level = LogLevel.Information;
        string message = string.Empty;
        DateTimeOffset? time = null;
        var fields = new List<KeyValuePair<string, object?>>();
        int dropped = 0;
        foreach (JsonProperty property in entry.EnumerateObject())
        {
            switch (property.Name)
            {
                case "level" when LevelOf(AsText(property.Value)) is { } known:
                    level = known;
                    continue;
                case "level":
                    // Unknown or not a string: keep it visible rather than guess a severity.
                    Add(fields, "runhcsLevel", AsText(property.Value), ref dropped);
                    continue;
                case "msg":
                    message = Truncate(AsText(property.Value));
                    continue;
                case "time" when property.Value.ValueKind == JsonValueKind.String
                                 && DateTimeOffset.TryParse(property.Value.GetString(), CultureInfo.InvariantCulture,
                                     DateTimeStyles.RoundtripKind, out DateTimeOffset parsed):
                    time = parsed;
                    continue;
                case "time":
                    Add(fields, "runhcsTime", AsText(property.Value), ref dropped);
                    continue;
                default:
                    Add(fields, property.Name, AsText(property.Value), ref dropped);
                    continue;
            }
        }

        if (dropped > 0)
        {
            fields.Add(new("droppedFields", dropped));
        }

        return new RunhcsLogEntry(level, message, time, fields);
    }

    private static void Add(List<KeyValuePair<string, object?>> fields, string name, string value, ref int dropped)
    {
        if (fields.Count >= MaxFields)
        {
            dropped++;
            return;
        }

        // Keys become logfmt keys: keep them to characters that need no quoting.
        string key = new([.. name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-' ? c : '_')]);
        fields.Add(new(key.Length == 0 ? "_" : key, Truncate(value)));
    }

    private static string AsText(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString() ?? string.Empty,
        JsonValueKind.Null => string.Empty,
        _ => value.GetRawText(),
    };

    private static string Truncate(string value) =>
        value.Length <= MaxValueLength ? value : string.Concat(value.AsSpan(0, MaxValueLength), "…(truncated)");
}
