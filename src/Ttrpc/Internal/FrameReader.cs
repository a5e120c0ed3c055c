using System.Buffers;

namespace PluggableShim.Ttrpc.Internal;

/// <summary>
/// Reads whole frames from a stream. A payload over the 4 MiB cap is read and
/// thrown away so that the next frame starts where it should; the caller learns
/// of it through <see cref="Frame.Oversized"/> and answers on that stream.
/// </summary>
internal sealed class FrameReader(Stream stream)
{
    private readonly Stream _stream = stream;
    private readonly byte[] _header = new byte[FrameHeader.Size];

    /// <summary>
    /// Returns the next frame, or null when the peer closed the stream at a frame
    /// boundary. A stream that ends inside a frame throws <see cref="EndOfStreamException"/>.
    /// </summary>
    public async ValueTask<Frame?> ReadAsync(CancellationToken cancellationToken)
    {
        int got = 0;
        while (got < FrameHeader.Size)
        {
            int n = await _stream.ReadAsync(_header.AsMemory(got), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                return got == 0 ? null : throw new EndOfStreamException("peer closed the connection inside a frame header");
            }

            got += n;
        }

        var header = FrameHeader.Read(_header);
        if (header.Length > FrameHeader.MaxPayload)
        {
            await DiscardAsync(header.Length, cancellationToken).ConfigureAwait(false);
            return new Frame(header, null, 0);
        }

        int length = (int)header.Length;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        try
        {
            await _stream.ReadExactlyAsync(buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }

        return new Frame(header, buffer, length);
    }

    private async ValueTask DiscardAsync(uint length, CancellationToken cancellationToken)
    {
        byte[] scratch = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            long left = length;
            while (left > 0)
            {
                int chunk = (int)Math.Min(left, scratch.Length);
                await _stream.ReadExactlyAsync(scratch.AsMemory(0, chunk), cancellationToken).ConfigureAwait(false);
                left -= chunk;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }
}

/// <summary>A frame read off the wire; its payload buffer is pooled and returned on dispose.</summary>
internal sealed class Frame(FrameHeader header, byte[]? buffer, int length) : IDisposable
{
    private byte[]? _buffer = buffer;

    public FrameHeader Header { get; } = header;

    /// <summary>True when the payload exceeded the cap and was discarded unread.</summary>
    public bool Oversized => _buffer is null;

    public ReadOnlySpan<byte> Payload => _buffer.AsSpan(0, length);

    public void Dispose()
    {
        byte[]? buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
