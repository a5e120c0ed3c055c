using System.Buffers.Binary;

namespace PluggableShim.Ttrpc.Internal;

/// <summary>Frame types of the ttrpc wire format.</summary>
internal enum FrameType : byte
{
    Request = 1,
    Response = 2,
    Data = 3,
}

/// <summary>
/// The 10-byte frame header: payload length and stream id (both big endian),
/// then the frame type and its flags.
/// </summary>
internal readonly record struct FrameHeader(uint Length, uint StreamId, FrameType Type, byte Flags)
{
    public const int Size = 10;

    /// <summary>The largest payload either side may send (4 MiB).</summary>
    public const int MaxPayload = 4 << 20;

    public static FrameHeader Read(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt32BigEndian(source),
        BinaryPrimitives.ReadUInt32BigEndian(source[4..]),
        (FrameType)source[8],
        source[9]);

    public static void WriteStreamId(Span<byte> destination, uint streamId) =>
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], streamId);

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, Length);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], StreamId);
        destination[8] = (byte)Type;
        destination[9] = Flags;
    }
}
