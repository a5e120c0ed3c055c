using System.Text;
using Microsoft.Extensions.Logging;

namespace PluggableShim.Host.Logging;

/// <summary>
/// Writes log lines in the logfmt shape containerd's own shims use
/// (<c>time="…" level=info msg="…" key=value</c>) to the bundle's <c>log</c> FIFO, which
/// containerd copies into its own log. Never to stdout: containerd reads start's stdout.
/// </summary>
/// <remarks>
/// Writes are synchronous under a lock: lines stay whole and ordered, and a log line is on
/// its way before the call it describes returns. When no reader is left, lines are dropped
/// rather than failing the shim.
/// </remarks>
internal sealed class LogfmtLoggerProvider(BundleLogSinks sink, LogLevel minimum) : ILoggerProvider, ISupportExternalScope
{
    private readonly Lock _gate = new();
    private readonly LogLevel _minimum = minimum;
    private IExternalScopeProvider? _scopes;

    // Guarded by _gate.
    private bool _broken;

    public ILogger CreateLogger(string categoryName) => new LogfmtLogger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
        lock (_gate)
        {
            _broken = true;
            sink.Dispose();
        }
    }

    private void Write(string line)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(line);
        lock (_gate)
        {
            if (_broken)
            {
                return;
            }

            sink.Write(bytes);
        }
    }

    private sealed class LogfmtLogger(LogfmtLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => owner._scopes?.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel >= owner._minimum && logLevel != LogLevel.None;

        public void Log<TState>(
            LogLevel logLevel,
            EventId eventId,
            TState state,
            Exception? exception,
            Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            var line = new StringBuilder(160);
            line.Append("time=\"").Append(DateTimeOffset.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ",
                System.Globalization.CultureInfo.InvariantCulture)).Append('"');
            line.Append(" level=").Append(LevelName(logLevel));
            line.Append(" msg=");
            Quote(line, formatter(state, exception));
            if (state is IEnumerable<KeyValuePair<string, object?>> fields)
            {
                AppendFields(line, fields);
            }

            owner._scopes?.ForEachScope(
                static (scope, builder) =>
                {
                    if (scope is IEnumerable<KeyValuePair<string, object?>> scoped)
                    {
                        AppendFields(builder, scoped);
                    }
                },
                line);
            line.Append(" component=").Append(category[(category.LastIndexOf('.') + 1)..]);
            if (exception is not null)
            {
                line.Append(" error=");
                Quote(line, exception.ToString());
            }

            line.Append('\n');
            owner.Write(line.ToString());
        }

        private static void AppendFields(StringBuilder line, IEnumerable<KeyValuePair<string, object?>> fields)
        {
            foreach ((string key, object? value) in fields)
            {
                if (key == "{OriginalFormat}")
                {
                    continue;
                }

                line.Append(' ').Append(key).Append('=');
                Quote(line, Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty);
            }
        }

        private static void Quote(StringBuilder line, string value)
        {
            line.Append('"');
            foreach (char c in value)
            {
                switch (c)
                {
                    case '"': line.Append("\\\""); break;
                    case '\\': line.Append("\\\\"); break;
                    case '\n': line.Append("\\n"); break;
                    case '\r': line.Append("\\r"); break;
                    case '\t': line.Append("\\t"); break;
                    default: line.Append(c); break;
                }
            }

            line.Append('"');
        }

        private static string LevelName(LogLevel level) => level switch
        {
            LogLevel.Trace => "trace",
            LogLevel.Debug => "debug",
            LogLevel.Information => "info",
            LogLevel.Warning => "warning",
            LogLevel.Error => "error",
            _ => "fatal",
        };
    }
}
