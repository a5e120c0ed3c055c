using System.Net.Sockets;
using Google.Protobuf;
using PluggableShim.Ttrpc.Wire;
using StateRequest = PluggableShim.Contracts.Task.StateRequest;
using StateResponse = PluggableShim.Contracts.Task.StateResponse;

namespace PluggableShim.Ttrpc.Tests.Support;

/// <summary>
/// A listening Unix socket the test answers by hand, to see exactly what a
/// <see cref="TtrpcClient"/> puts on the wire and to misbehave as a server.
/// </summary>
internal sealed class FakeServer : IAsyncDisposable
{
    private readonly DirectoryInfo _folder = Directory.CreateTempSubdirectory("ttrpc-fake-");
    private readonly Socket _listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);

    public FakeServer()
    {
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(8);
    }

    public string SocketPath => Path.Combine(_folder.FullName, "fake.sock");

    public string Address => "unix://" + SocketPath;

    public async Task<(TtrpcClient Client, RawConnection Server)> ConnectAsync()
    {
        Task<Socket> accepted = _listener.AcceptAsync(TestContext.Current.CancellationToken).AsTask();
        TtrpcClient client = await TtrpcClient.ConnectAsync(Address, cancellationToken: TestContext.Current.CancellationToken);
        return (client, new RawConnection(await accepted));
    }

    /// <summary>Answers every State request with its own id until the client goes away; returns the stream ids seen.</summary>
    public static async Task<List<uint>> EchoUntilClosedAsync(RawConnection server)
    {
        var ids = new List<uint>();
        while (true)
        {
            RawFrame frame;
            try
            {
                frame = await server.ReadFrameAsync();
            }
            catch (EndOfStreamException)
            {
                return ids;
            }

            ids.Add(frame.StreamId);
            await AnswerAsync(server, frame);
        }
    }

    public static Task AnswerAsync(RawConnection server, RawFrame request)
    {
        var state = StateRequest.Parser.ParseFrom(request.AsRequest().Payload);
        var response = new Response { Payload = new StateResponse { Id = state.Id }.ToByteString() };
        return server.SendFrameAsync(request.StreamId, RawConnection.ResponseType, response.ToByteArray());
    }

    public ValueTask DisposeAsync()
    {
        _listener.Dispose();
        _folder.Delete(recursive: true);
        return ValueTask.CompletedTask;
    }
}
