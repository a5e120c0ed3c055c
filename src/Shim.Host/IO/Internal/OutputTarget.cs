using System.Text;
using PluggableShim.Abstractions;

namespace PluggableShim.Host.IO.Internal;

/// <summary>Where one output stream of a process goes, as the client's stdout/stderr string asked.</summary>
internal abstract record OutputTarget
{
    /// <summary>An absolute path: a FIFO the client created, or else a file appended to.</summary>
    public sealed record PathTarget(string Path) : OutputTarget;

    /// <summary><c>file:///path</c>: both streams appended to one file, created with its folders if missing.</summary>
    public sealed record FileTarget(string Path) : OutputTarget;

    /// <summary><c>binary:///path?k=v</c>: a logging program fed stdout on fd 3 and stderr on fd 4.</summary>
    public sealed record BinaryTarget(string Program, IReadOnlyList<string> Arguments) : OutputTarget
    {
        public bool Equals(BinaryTarget? other) =>
            other is not null && Program == other.Program && Arguments.SequenceEqual(other.Arguments);

        public override int GetHashCode() => Program.GetHashCode(StringComparison.Ordinal);
    }
}

/// <summary>The output targets of one process, parsed once at Create or Exec.</summary>
/// <param name="Stdout">Null when the client wants no stdout.</param>
/// <param name="Stderr">Null when there is none (or terminal mode); the same instance as
/// <paramref name="Stdout"/> when both streams share one file or one logging program.</param>
internal sealed record OutputPlan(OutputTarget? Stdout, OutputTarget? Stderr)
{
    public bool Shared => Stdout is not null && ReferenceEquals(Stdout, Stderr);

    /// <summary>
    /// Reads the client's stdout and stderr strings. As with containerd's shims, stdout decides the
    /// scheme: with <c>file://</c> or <c>binary://</c> stderr goes to the same place, and a stderr
    /// that names something else is refused rather than silently ignored.
    /// </summary>
    /// <exception cref="InvalidArgumentException">A relative path, an unknown scheme or a malformed URI.</exception>
    public static OutputPlan Parse(string stdout, string stderr, bool terminal)
    {
        OutputTarget? output = StdioUri.ParseOutput(stdout, "stdout");
        if (output is OutputTarget.FileTarget or OutputTarget.BinaryTarget)
        {
            if (stderr.Length > 0 && stderr != stdout)
            {
                throw new InvalidArgumentException(
                    $"stderr \"{stderr}\" differs from stdout \"{stdout}\": with a file:// or binary:// stdout, " +
                    "stderr must be empty or the same URI (both streams go there)");
            }

            return new OutputPlan(output, terminal ? null : output);
        }

        if (terminal)
        {
            return new OutputPlan(output, null);
        }

        OutputTarget? error = StdioUri.ParseOutput(stderr, "stderr");
        if (error is OutputTarget.FileTarget or OutputTarget.BinaryTarget)
        {
            throw new InvalidArgumentException(
                $"stderr \"{stderr}\" is a URI but stdout is not: a file:// or binary:// target must be given as stdout " +
                "(and then takes both streams)");
        }

        return new OutputPlan(output, error);
    }
}

/// <summary>
/// The stdio strings of the Task API: empty, an absolute path, or <c>file:///path</c> or
/// <c>binary:///path?k=v&amp;…</c>. A small strict reader of our own: System.Uri normalises paths and
/// guesses at intent, and an operator deserves to hear exactly what was wrong.
/// </summary>
internal static class StdioUri
{
    public const string FileScheme = "file";
    public const string BinaryScheme = "binary";

    public static OutputTarget? ParseOutput(string value, string stream)
    {
        if (value.Length == 0)
        {
            return null;
        }

        if (value[0] == '/' || ClientPipes.IsPipe(value))
        {
            RequireNoNul(value, value, stream);
            return new OutputTarget.PathTarget(value);
        }

        if (!TrySplitScheme(value, out string scheme, out string rest))
        {
            throw new InvalidArgumentException(
                $"{stream} \"{value}\" is a relative path; give an absolute path, or a file:// or binary:// URI");
        }

        switch (scheme)
        {
            case FileScheme:
            {
                (string path, string? query) = SplitHierarchy(value, rest, stream);
                if (query is not null)
                {
                    throw new InvalidArgumentException($"{stream} \"{value}\": a file:// URI takes no query");
                }

                return new OutputTarget.FileTarget(path);
            }

            case BinaryScheme:
            {
                (string path, string? query) = SplitHierarchy(value, rest, stream);
                return new OutputTarget.BinaryTarget(path, Arguments(value, query ?? string.Empty, stream));
            }

            default:
                throw new InvalidArgumentException(
                    $"{stream} \"{value}\" has the unsupported scheme \"{scheme}\"; " +
                    "supported: an absolute path (FIFO or file), file:///path, binary:///path?k=v");
        }
    }

    // RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":". Schemes compare case-insensitively.
    private static bool TrySplitScheme(string value, out string scheme, out string rest)
    {
        scheme = rest = string.Empty;
        int colon = value.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || !char.IsAsciiLetter(value[0]))
        {
            return false;
        }

        for (int i = 1; i < colon; i++)
        {
            char c = value[i];
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('+' or '-' or '.'))
            {
                return false;
            }
        }

        scheme = value[..colon].ToLowerInvariant();
        rest = value[(colon + 1)..];
        return true;
    }

    // "//" + empty authority + absolute path, then an optional "?query". No fragment.
    private static (string Path, string? Query) SplitHierarchy(string value, string rest, string stream)
    {
        if (!rest.StartsWith("//", StringComparison.Ordinal))
        {
            throw new InvalidArgumentException(
                $"{stream} \"{value}\" must be written scheme:///absolute/path (three slashes)");
        }

        if (rest.Contains('#', StringComparison.Ordinal))
        {
            throw new InvalidArgumentException(
                $"{stream} \"{value}\" has a fragment (#); write a '#' in a path or argument as %23");
        }

        string afterSlashes = rest[2..];
        int question = afterSlashes.IndexOf('?', StringComparison.Ordinal);
        string hierarchy = question < 0 ? afterSlashes : afterSlashes[..question];
        string? query = question < 0 ? null : afterSlashes[(question + 1)..];
        int slash = hierarchy.IndexOf('/', StringComparison.Ordinal);
        string host = slash < 0 ? hierarchy : hierarchy[..slash];
        if (host.Length > 0)
        {
            throw new InvalidArgumentException(
                $"{stream} \"{value}\" names a host \"{host}\"; only local paths work: scheme:///absolute/path");
        }

        string path = slash < 0 ? string.Empty : Unescape(hierarchy[slash..], plusIsSpace: false, value, stream);
        if (path.Length <= 1)
        {
            throw new InvalidArgumentException($"{stream} \"{value}\" has no path");
        }

        RequireNoNul(path, value, stream);
        return (path, query);
    }

    // Each pair becomes two arguments, key then value, in the order written: what containerd's
    // shims pass (they iterate a map, so their order varies; ours is stable). A key without '='
    // still yields an empty value argument, as there.
    private static string[] Arguments(string value, string query, string stream)
    {
        var arguments = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string pair in query.Split('&'))
        {
            if (pair.Length == 0)
            {
                continue;
            }

            if (pair.Contains(';', StringComparison.Ordinal))
            {
                throw new InvalidArgumentException(
                    $"{stream} \"{value}\": ';' is not a query separator; use '&' (or %3B for a literal ';')");
            }

            int equals = pair.IndexOf('=', StringComparison.Ordinal);
            string key = Unescape(equals < 0 ? pair : pair[..equals], plusIsSpace: true, value, stream);
            string argument = equals < 0 ? string.Empty : Unescape(pair[(equals + 1)..], plusIsSpace: true, value, stream);
            if (key.Length == 0)
            {
                throw new InvalidArgumentException($"{stream} \"{value}\" has a query pair with an empty key");
            }

            if (!seen.Add(key))
            {
                throw new InvalidArgumentException(
                    $"{stream} \"{value}\" repeats the query key \"{key}\" (each key becomes one argument pair)");
            }

            RequireNoNul(key, value, stream);
            RequireNoNul(argument, value, stream);
            arguments.Add(key);
            arguments.Add(argument);
        }

        return [.. arguments];
    }

    private static string Unescape(string text, bool plusIsSpace, string value, string stream)
    {
        if (!text.Contains('%', StringComparison.Ordinal) && !(plusIsSpace && text.Contains('+', StringComparison.Ordinal)))
        {
            return text;
        }

        var bytes = new List<byte>(text.Length);
        int literal = 0; // start of the run of characters copied as they are
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c != '%' && !(c == '+' && plusIsSpace))
            {
                continue;
            }

            bytes.AddRange(Encoding.UTF8.GetBytes(text[literal..i]));
            if (c == '+')
            {
                bytes.Add((byte)' ');
                literal = i + 1;
                continue;
            }

            if (i + 2 >= text.Length || !char.IsAsciiHexDigit(text[i + 1]) || !char.IsAsciiHexDigit(text[i + 2]))
            {
                throw new InvalidArgumentException(
                    $"{stream} \"{value}\" has a bad percent escape at \"{text[i..Math.Min(text.Length, i + 3)]}\"");
            }

            bytes.Add(Convert.ToByte(text.Substring(i + 1, 2), 16));
            i += 2;
            literal = i + 1;
        }

        bytes.AddRange(Encoding.UTF8.GetBytes(text[literal..]));
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString([.. bytes]);
        }
        catch (DecoderFallbackException ex)
        {
            throw new InvalidArgumentException($"{stream} \"{value}\" percent-decodes to invalid UTF-8", ex);
        }
    }

    private static void RequireNoNul(string text, string value, string stream)
    {
        if (text.Contains('\0', StringComparison.Ordinal))
        {
            throw new InvalidArgumentException($"{stream} \"{value}\" contains a NUL character");
        }
    }
}
