using Microsoft.Extensions.Logging;

namespace PluggableShim.Runhcs.Tests.Support;

/// <summary>An ILogger that keeps every entry with its level, message and the fields of its scopes.</summary>
public sealed class RecordingLogger : ILogger
{
    private readonly List<Entry> _entries = [];
    private readonly AsyncLocal<List<object>?> _scopes = new();

    public sealed record Entry(LogLevel Level, EventId EventId, string Message, IReadOnlyDictionary<string, string?> Fields);

    public IReadOnlyList<Entry> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public IDisposable BeginScope<TState>(TState state)
        where TState : notnull
    {
        List<object> scopes = _scopes.Value ??= [];
        scopes.Add(state);
        return new Pop(scopes);
    }

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception,
        Func<TState, Exception?, string> formatter)
    {
        var fields = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (object scope in _scopes.Value ?? [])
        {
            if (scope is IEnumerable<KeyValuePair<string, object?>> pairs)
            {
                foreach ((string key, object? value) in pairs)
                {
                    fields[key] = Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture);
                }
            }
        }

        lock (_entries)
        {
            _entries.Add(new Entry(logLevel, eventId, formatter(state, exception), fields));
        }
    }

    private sealed class Pop(List<object> scopes) : IDisposable
    {
        public void Dispose() => scopes.RemoveAt(scopes.Count - 1);
    }
}
