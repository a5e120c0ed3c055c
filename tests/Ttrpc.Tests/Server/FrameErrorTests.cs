using Google.Protobuf;
using Grpc.Core;
using PluggableShim.Ttrpc.Tests.Support;
using PluggableShim.Ttrpc.Wire;

namespace PluggableShim.Ttrpc.Tests.Server;

/// <summary>
/// Malformed traffic driven byte by byte against the server. Each test checks the
/// answer and then the connection's fate: a frame error costs only its own stream.
/// </summary>
public sealed class FrameErrorTests
{
    private const int MaxPayload = 4 << 20;

    [Fact]
    public async Task Oversized_frame_is_drained_answered_ResourceExhausted_and_connection_kept()
    {
        await using var harness = ServerHarness.Start();
        await using RawConnection raw = await harness.ConnectRawAsync();

        // A payload of junk one byte over the cap: the server must skip all of it to
        // find the next header, so any miscount would break the call that follows.
        byte[] payload = new byte[MaxPayload + 1];
        Array.Fill(payload, (byte)0xEE);
        await raw.SendFrameAsync(1, RawConnection.RequestType, payload);

        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal((int)StatusCode.ResourceExhausted, answer.Status.Code);
        await raw.AssertUsableAsync(3);
    }

    [Fact]
    public async Task Frame_of_exactly_the_cap_is_accepted()
    {
        await using var harness = ServerHarness.Start();
        await using RawConnection raw = await harness.ConnectRawAsync();

        // Pad a valid State request with an unknown field until the Request is exactly 4 MiB.
        Request request = RawConnection.StateRequest("big");
        byte[] state = new Contracts.Task.StateRequest { Id = "big" }.ToByteArray();
        int filler = MaxPayload - 200;
        for (int i = 0; i < 4 && request.CalculateSize() != MaxPayload; i++)
        {
            // Unknown field 15, length-delimited (tag 0x7A), of zeros.
            request.Payload = ByteString.CopyFrom([.. state, 0x7A, .. VarInt((uint)filler), .. new byte[filler]]);
            filler += MaxPayload - request.CalculateSize();
        }

        Assert.Equal(MaxPayload, request.CalculateSize());

        await raw.SendRequestAsync(1, request);
        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal(0, answer.Status?.Code ?? 0);
    }

    [Fact]
    public async Task Even_stream_id_is_answered_InvalidArgument_and_connection_kept()
    {
        await using var harness = ServerHarness.Start();
        await using RawConnection raw = await harness.ConnectRawAsync();

        await raw.SendRequestAsync(2, RawConnection.StateRequest("even"));

        Response answer = await raw.ReadResponseAsync(2);
        Assert.Equal((int)StatusCode.InvalidArgument, answer.Status.Code);
        Assert.Empty(harness.Task.Calls);
        await raw.AssertUsableAsync(3);
    }

    [Fact]
    public async Task Reused_and_decreasing_stream_ids_are_answered_InvalidArgument_and_connection_kept()
    {
        await using var harness = ServerHarness.Start();
        await using RawConnection raw = await harness.ConnectRawAsync();

        await raw.SendRequestAsync(5, RawConnection.StateRequest("first"));
        Assert.Equal(0, (await raw.ReadResponseAsync(5)).Status?.Code ?? 0);

        await raw.SendRequestAsync(5, RawConnection.StateRequest("reused"));
        Assert.Equal((int)StatusCode.InvalidArgument, (await raw.ReadResponseAsync(5)).Status.Code);

        await raw.SendRequestAsync(3, RawConnection.StateRequest("lower"));
        Assert.Equal((int)StatusCode.InvalidArgument, (await raw.ReadResponseAsync(3)).Status.Code);

        Assert.Equal(["first"], harness.Task.Calls);
        await raw.AssertUsableAsync(7);
    }

    [Fact]
    public async Task Unknown_service_is_answered_Unimplemented_and_connection_kept()
    {
        await using var harness = ServerHarness.Start();
        await using RawConnection raw = await harness.ConnectRawAsync();

        Request request = RawConnection.StateRequest("x");
        request.Service = "containerd.task.v9.Task";
        await raw.SendRequestAsync(1, request);

        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal((int)StatusCode.Unimplemented, answer.Status.Code);
        Assert.Contains("containerd.task.v9.Task", answer.Status.Message, StringComparison.Ordinal);
        await raw.AssertUsableAsync(3);
    }

    [Fact]
    public async Task Unknown_method_is_answered_Unimplemented_and_connection_kept()
    {
        await using var harness = ServerHarness.Start();
        await using RawConnection raw = await harness.ConnectRawAsync();

        Request request = RawConnection.StateRequest("x");
        request.Method = "Teleport";
        await raw.SendRequestAsync(1, request);

        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal((int)StatusCode.Unimplemented, answer.Status.Code);
        Assert.Contains("Teleport", answer.Status.Message, StringComparison.Ordinal);
        await raw.AssertUsableAsync(3);
    }

    [Fact]
    public async Task Unknown_method_with_a_huge_name_is_still_answered_and_connection_kept()
    {
        // The name is echoed into the status message; the answer must still fit a frame.
        await using var harness = ServerHarness.Start();
        await using RawConnection raw = await harness.ConnectRawAsync();

        Request request = RawConnection.StateRequest("x");
        request.Method = new string('m', MaxPayload - 1024);
        await raw.SendRequestAsync(1, request);

        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal((int)StatusCode.Unimplemented, answer.Status.Code);
        await raw.AssertUsableAsync(3);
    }

    [Fact]
    public async Task Garbage_request_bytes_are_answered_InvalidArgument_and_connection_kept()
    {
        await using var harness = ServerHarness.Start();
        await using RawConnection raw = await harness.ConnectRawAsync();

        // Field 1, length-delimited, claiming 100 bytes of which 3 follow.
        await raw.SendFrameAsync(1, RawConnection.RequestType, [0x0A, 100, 0x61, 0x62, 0x63]);

        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal((int)StatusCode.InvalidArgument, answer.Status.Code);
        await raw.AssertUsableAsync(3);
    }

    [Fact]
    public async Task Request_whose_payload_does_not_decode_is_answered_Internal_and_connection_kept()
    {
        await using var harness = ServerHarness.Start();
        await using RawConnection raw = await harness.ConnectRawAsync();

        Request request = RawConnection.StateRequest("x");
        request.Payload = ByteString.CopyFrom(0x0A, 0x10, 0x61); // id claims 16 bytes, has 1
        await raw.SendRequestAsync(1, request);

        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal((int)StatusCode.Internal, answer.Status.Code);
        Assert.Empty(harness.Task.Calls);
        await raw.AssertUsableAsync(3);
    }

    [Fact]
    public async Task Empty_request_frame_is_answered_Unimplemented_and_connection_kept()
    {
        await using var harness = ServerHarness.Start();
        await using RawConnection raw = await harness.ConnectRawAsync();

        await raw.SendFrameAsync(1, RawConnection.RequestType, []);

        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal((int)StatusCode.Unimplemented, answer.Status.Code);
        await raw.AssertUsableAsync(3);
    }

    [Fact]
    public async Task Frames_split_into_single_bytes_are_reassembled()
    {
        await using var harness = ServerHarness.Start();
        await using RawConnection raw = await harness.ConnectRawAsync();

        byte[] frame = RawConnection.Frame(1, RawConnection.RequestType,
            RawConnection.StateRequest("dribbled").ToByteArray());
        foreach (byte b in frame)
        {
            await raw.SendAsync(new[] { b });
        }

        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal("dribbled", Contracts.Task.StateResponse.Parser.ParseFrom(answer.Payload).Id);
    }

    private static byte[] VarInt(uint value)
    {
        var bytes = new List<byte>();
        while (value >= 0x80)
        {
            bytes.Add((byte)(value | 0x80));
            value >>= 7;
        }

        bytes.Add((byte)value);
        return [.. bytes];
    }
}
