using System.Buffers;
using System.Threading.Channels;
using Google.Protobuf;

namespace PluggableShim.Ttrpc.Internal;

/// <summary>
/// Serialises outgoing frames onto one stream.
/// </summary>
/// <remarks>
/// Many calls finish concurrently on one connection, so frames are queued and a
/// single loop writes them. While more frames are already waiting, the loop packs
/// them into one buffer and issues one write: under load that turns N small
/// writes into one system call without delaying a lone frame.
/// A write failure ends the loop and is reported through <see cref="Completion"/>;
/// the owner then tears the connection down.
/// </remarks>
internal sealed class FrameWriter
{
    private const int CoalesceLimit = 64 * 1024;

    private readonly Stream _stream;
    private long _queuedBytes; // Interlocked
    private readonly Channel<OutgoingFrame> _queue = Channel.CreateUnbounded<OutgoingFrame>(
        new UnboundedChannelOptions { SingleReader = true, AllowSynchronousContinuations = false });

    public FrameWriter(Stream stream)
    {
        _stream = stream;
        Completion = Task.Run(WriteLoopAsync);
    }

    /// <summary>Completes when the writer stops: after <see cref="Complete"/> drained the queue, or on a write error.</summary>
    public Task Completion { get; }

    /// <summary>Queues a frame carrying <paramref name="message"/>. Returns false when the writer has stopped.</summary>
    public bool TryEnqueue(uint streamId, FrameType type, IMessage message) =>
        TryEnqueue(Prepare(type, message), streamId);

    /// <summary>
    /// Serialises <paramref name="message"/> into a frame whose stream id is set later by
    /// <see cref="TryEnqueue(PreparedFrame, uint)"/>, so that a caller can pick the id and
    /// queue the frame atomically without serialising under its lock.
    /// </summary>
    public static PreparedFrame Prepare(FrameType type, IMessage message)
    {
        int size = message.CalculateSize();
        if (size > FrameHeader.MaxPayload)
        {
            throw new InvalidOperationException($"ttrpc frame of {size} bytes exceeds the {FrameHeader.MaxPayload} byte limit");
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(FrameHeader.Size + size);
        new FrameHeader((uint)size, 0, type, 0).Write(buffer);
        message.WriteTo(buffer.AsSpan(FrameHeader.Size, size));
        return new PreparedFrame(buffer, FrameHeader.Size + size);
    }

    /// <summary>Bytes queued and not yet written: what a peer that does not read makes grow.</summary>
    public long QueuedBytes => Interlocked.Read(ref _queuedBytes);

    /// <summary>Stamps <paramref name="streamId"/> on a prepared frame and queues it; false when the writer has stopped.</summary>
    public bool TryEnqueue(PreparedFrame frame, uint streamId)
    {
        FrameHeader.WriteStreamId(frame.Buffer, streamId);
        Interlocked.Add(ref _queuedBytes, frame.Length);
        if (_queue.Writer.TryWrite(new OutgoingFrame(frame.Buffer, frame.Length)))
        {
            return true;
        }

        Interlocked.Add(ref _queuedBytes, -frame.Length);

        ArrayPool<byte>.Shared.Return(frame.Buffer);
        return false;
    }

    /// <summary>Stops accepting frames; the queue drains, then the loop ends.</summary>
    public void Complete() => _queue.Writer.TryComplete();

    private async Task WriteLoopAsync()
    {
        ChannelReader<OutgoingFrame> reader = _queue.Reader;
        byte[] batch = new byte[CoalesceLimit];
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                int used = 0;
                while (reader.TryRead(out OutgoingFrame frame))
                {
                    try
                    {
                        if (used + frame.Length > batch.Length)
                        {
                            if (used > 0)
                            {
                                await _stream.WriteAsync(batch.AsMemory(0, used)).ConfigureAwait(false);
                                used = 0;
                            }

                            if (frame.Length > batch.Length)
                            {
                                await _stream.WriteAsync(frame.Buffer.AsMemory(0, frame.Length)).ConfigureAwait(false);
                                continue;
                            }
                        }

                        frame.Buffer.AsSpan(0, frame.Length).CopyTo(batch.AsSpan(used));
                        used += frame.Length;
                    }
                    finally
                    {
                        Interlocked.Add(ref _queuedBytes, -frame.Length);
                        ArrayPool<byte>.Shared.Return(frame.Buffer);
                    }
                }

                if (used > 0)
                {
                    await _stream.WriteAsync(batch.AsMemory(0, used)).ConfigureAwait(false);
                }

                await _stream.FlushAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            // Whatever made us stop, nobody may queue behind a dead writer, and
            // queued buffers go back to the pool.
            _queue.Writer.TryComplete();
            while (reader.TryRead(out OutgoingFrame left))
            {
                ArrayPool<byte>.Shared.Return(left.Buffer);
            }
        }
    }

    private readonly record struct OutgoingFrame(byte[] Buffer, int Length);
}

/// <summary>A serialised frame waiting for its stream id; owned by whoever queues it.</summary>
internal readonly record struct PreparedFrame(byte[] Buffer, int Length)
{
    /// <summary>Gives the buffer back when the frame will never be queued.</summary>
    public void Release() => ArrayPool<byte>.Shared.Return(Buffer);
}
