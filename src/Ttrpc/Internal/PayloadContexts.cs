using System.Buffers;
using Grpc.Core;

namespace PluggableShim.Ttrpc.Internal;

/// <summary>Hands a received payload to a generated message parser without copying it.</summary>
internal sealed class PayloadDeserializationContext(ReadOnlyMemory<byte> payload) : DeserializationContext
{
    public override int PayloadLength => payload.Length;

    public override byte[] PayloadAsNewBuffer() => payload.ToArray();

    public override ReadOnlySequence<byte> PayloadAsReadOnlySequence() => new(payload);
}

/// <summary>Collects what a generated marshaller writes, for wrapping into a ttrpc Request or Response.</summary>
internal sealed class PayloadSerializationContext : SerializationContext
{
    private ArrayBufferWriter<byte>? _writer;
    private byte[]? _complete;

    public ReadOnlyMemory<byte> Written => _complete ?? _writer?.WrittenMemory ?? ReadOnlyMemory<byte>.Empty;

    public override void Complete(byte[] payload) => _complete = payload;

    public override IBufferWriter<byte> GetBufferWriter() => _writer ??= new ArrayBufferWriter<byte>();

    public override void SetPayloadLength(int payloadLength) =>
        _writer ??= new ArrayBufferWriter<byte>(Math.Max(payloadLength, 1));

    public override void Complete()
    {
    }

    public static ReadOnlyMemory<byte> Serialize<T>(Marshaller<T> marshaller, T message)
    {
        var context = new PayloadSerializationContext();
        marshaller.ContextualSerializer(message, context);
        return context.Written;
    }
}
