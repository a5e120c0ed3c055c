using System.Buffers.Binary;
using System.Net.Sockets;
using Google.Protobuf;
using PluggableShim.Ttrpc.Wire;

namespace PluggableShim.Ttrpc.Tests.Support;

/// <summary>A frame as a test reads it off the wire.</summary>
internal readonly record struct RawFrame(uint Length, uint StreamId, byte Type, byte Flags, byte[] Payload)
{
    public Response AsResponse() => Response.Parser.ParseFrom(Payload);

    public Request AsRequest() => Request.Parser.ParseFrom(Payload);
}

/// <summary>
/// A plain socket speaking ttrpc byte by byte, so that tests can send what a well-behaved
/// client never would. Frames are laid out here by hand (not with the library's own
/// header code) so that a mistake in the library cannot cancel out in the test.
/// </summary>
internal sealed class RawConnection(Socket socket) : IAsyncDisposable
{
    /// <summary>How long a test waits for something that should happen at once.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    public const byte RequestType = 1;
    public const byte ResponseType = 2;

    public Socket Socket { get; } = socket;

    public static async Task<RawConnection> ConnectAsync(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), TestContext.Current.CancellationToken);
        return new RawConnection(socket);
    }

    public static byte[] Header(uint length, uint streamId, byte type, byte flags = 0)
    {
        byte[] header = new byte[10];
        BinaryPrimitives.WriteUInt32BigEndian(header, length);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), streamId);
        header[8] = type;
        header[9] = flags;
        return header;
    }

    public static byte[] Frame(uint streamId, byte type, ReadOnlySpan<byte> payload) =>
        [.. Header((uint)payload.Length, streamId, type), .. payload];

    public static Request StateRequest(string id, long timeoutNano = 0) => new()
    {
        Service = ScriptedTask.Service,
        Method = "State",
        Payload = new Contracts.Task.StateRequest { Id = id }.ToByteString(),
        TimeoutNano = timeoutNano,
    };

    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            int sent = await Socket.SendAsync(bytes, SocketFlags.None, TestContext.Current.CancellationToken);
            bytes = bytes[sent..];
        }
    }

    public Task SendFrameAsync(uint streamId, byte type, ReadOnlySpan<byte> payload) =>
        SendAsync(Frame(streamId, type, payload));

    public Task SendRequestAsync(uint streamId, Request request) =>
        SendFrameAsync(streamId, RequestType, request.ToByteArray());

    /// <summary>Reads one frame; fails the test if the peer closes or nothing comes in time.</summary>
    public async Task<RawFrame> ReadFrameAsync()
    {
        byte[] header = new byte[10];
        if (!await ReadExactlyAsync(header))
        {
            throw new EndOfStreamException("the server closed the connection instead of answering");
        }

        uint length = BinaryPrimitives.ReadUInt32BigEndian(header);
        byte[] payload = new byte[length];
        if (!await ReadExactlyAsync(payload))
        {
            throw new EndOfStreamException("the server closed the connection inside a frame");
        }

        return new RawFrame(length, BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4)), header[8], header[9], payload);
    }

    /// <summary>Reads a Response frame and checks it answers <paramref name="streamId"/>.</summary>
    public async Task<Response> ReadResponseAsync(uint streamId)
    {
        RawFrame frame = await ReadFrameAsync();
        Assert.Equal(ResponseType, frame.Type);
        Assert.Equal(streamId, frame.StreamId);
        return frame.AsResponse();
    }

    /// <summary>Sends a valid State call and checks it is answered: the connection still works.</summary>
    public async Task AssertUsableAsync(uint streamId)
    {
        await SendRequestAsync(streamId, StateRequest("still-there"));
        Response response = await ReadResponseAsync(streamId);
        Assert.Equal(0, response.Status?.Code ?? 0);
        var state = Contracts.Task.StateResponse.Parser.ParseFrom(response.Payload);
        Assert.Equal("still-there", state.Id);
    }

    /// <summary>True when the peer closed its end (read returns 0) within <see cref="Patience"/>.</summary>
    public async Task<bool> WaitForPeerCloseAsync()
    {
        byte[] sink = new byte[4096];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(Patience);
        try
        {
            while (true)
            {
                int n = await Socket.ReceiveAsync(sink, SocketFlags.None, timeout.Token);
                if (n == 0)
                {
                    return true;
                }
            }
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private async Task<bool> ReadExactlyAsync(Memory<byte> buffer)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(Patience);
        while (!buffer.IsEmpty)
        {
            int n = await Socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            if (n == 0)
            {
                return false;
            }

            buffer = buffer[n..];
        }

        return true;
    }

    public ValueTask DisposeAsync()
    {
        Socket.Dispose();
        return ValueTask.CompletedTask;
    }
}
