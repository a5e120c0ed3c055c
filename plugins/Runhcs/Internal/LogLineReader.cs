using System.Buffers;
using System.Text;

namespace PluggableShim.Plugins.Runhcs.Internal;

/// <summary>
/// Splits a log stream into lines without trusting it: a line longer than
/// <see cref="MaxLineBytes"/> is cut (the rest of it skipped up to the next newline), invalid
/// UTF-8 is replaced, and what is left when the writer goes away is still delivered, marked partial.
/// </summary>
internal sealed class LogLineReader
{
    public const int MaxLineBytes = 64 * 1024;

    private readonly ArrayBufferWriter<byte> _line = new(256);
    private bool _truncated;

    /// <summary>A line and how it ended.</summary>
    public readonly record struct Line(string Text, bool Truncated, bool Partial);

    /// <summary>Reads <paramref name="stream"/> to its end (or to a broken pipe), line by line.</summary>
    public static async IAsyncEnumerable<Line> ReadAsync(
        Stream stream,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var reader = new LogLineReader();
        byte[] buffer = new byte[8192];
        var lines = new List<Line>();
        while (true)
        {
            int read;
            try
            {
                read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException)
            {
                read = 0; // the writer broke the pipe: what we have is all there is
            }

            if (read == 0)
            {
                break;
            }

            reader.Feed(buffer.AsSpan(0, read), lines);
            foreach (Line line in lines)
            {
                yield return line;
            }

            lines.Clear();
        }

        if (reader.Finish() is { } last)
        {
            yield return last;
        }
    }

    /// <summary>The lines of a complete log (a file read back).</summary>
    public static List<Line> Split(ReadOnlySpan<byte> content)
    {
        var reader = new LogLineReader();
        var lines = new List<Line>();
        reader.Feed(content, lines);
        if (reader.Finish() is { } last)
        {
            lines.Add(last);
        }

        return lines;
    }

    private void Feed(ReadOnlySpan<byte> bytes, List<Line> output)
    {
        int newline;
        while ((newline = bytes.IndexOf((byte)'\n')) >= 0)
        {
            Append(bytes[..newline]);
            output.Add(new Line(Text(), _truncated, Partial: false));
            _line.ResetWrittenCount();
            _truncated = false;
            bytes = bytes[(newline + 1)..];
        }

        Append(bytes);
    }

    private Line? Finish() => _line.WrittenCount > 0 || _truncated ? new Line(Text(), _truncated, Partial: true) : null;

    private void Append(ReadOnlySpan<byte> bytes)
    {
        int room = MaxLineBytes - _line.WrittenCount;
        if (bytes.Length > room)
        {
            _truncated = true;
            bytes = bytes[..Math.Max(room, 0)];
        }

        _line.Write(bytes);
    }

    private string Text() => Encoding.UTF8.GetString(_line.WrittenSpan).TrimEnd('\r');
}
