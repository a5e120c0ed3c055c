using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using PluggableShim.Ttrpc.Tests.Support;
using PluggableShim.Ttrpc.Wire;
using StateRequest = PluggableShim.Contracts.Task.StateRequest;
using StateResponse = PluggableShim.Contracts.Task.StateResponse;
using TaskApi = PluggableShim.Contracts.Task.Task;

namespace PluggableShim.Ttrpc.Tests.Client;

/// <summary>The client against a hand-driven server: what it sends, and how it copes.</summary>
public sealed class ClientCallTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Calls_carry_service_method_metadata_and_odd_increasing_stream_ids()
    {
        await using var fake = new FakeServer();
        (TtrpcClient client, RawConnection server) = await fake.ConnectAsync();
        await using var _ = client;
        await using var __ = server;
        var tasks = new TaskApi.TaskClient(client);

        for (uint expected = 1; expected <= 5; expected += 2)
        {
            Task<StateResponse> call = tasks.StateAsync(
                new StateRequest { Id = "c" + expected },
                new Metadata { { "containerd-namespace-ttrpc", "default" } },
                cancellationToken: Token).ResponseAsync;
            RawFrame frame = await server.ReadFrameAsync();
            Assert.Equal(expected, frame.StreamId);
            Assert.Equal(RawConnection.RequestType, frame.Type);
            Request request = frame.AsRequest();
            Assert.Equal("containerd.task.v2.Task", request.Service);
            Assert.Equal("State", request.Method);
            Assert.Equal(0, request.TimeoutNano);
            KeyValue namespaceEntry = Assert.Single(request.Metadata);
            Assert.Equal(("containerd-namespace-ttrpc", "default"), (namespaceEntry.Key, namespaceEntry.Value));
            await FakeServer.AnswerAsync(server, frame);
            Assert.Equal("c" + expected, (await call).Id);
        }
    }

    [Fact]
    public async Task Pending_calls_fail_Unavailable_when_the_server_goes_away_and_later_calls_fail_at_once()
    {
        await using var fake = new FakeServer();
        (TtrpcClient client, RawConnection server) = await fake.ConnectAsync();
        await using var _ = client;
        var tasks = new TaskApi.TaskClient(client);
        Task<StateResponse>[] pending = Enumerable.Range(0, 3)
            .Select(i => tasks.StateAsync(new() { Id = "p" + i }, cancellationToken: Token).ResponseAsync)
            .ToArray();
        for (int i = 0; i < 3; i++)
        {
            await server.ReadFrameAsync();
        }

        await server.DisposeAsync();

        foreach (Task<StateResponse> call in pending)
        {
            RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(RawConnection.Patience, Token));
            Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        }

        await client.Completion.WaitAsync(RawConnection.Patience, Token);
        RpcException late = await Assert.ThrowsAsync<RpcException>(
            () => tasks.StateAsync(new() { Id = "late" }, cancellationToken: Token).ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, late.StatusCode);
    }

    [Fact]
    public async Task Client_deadline_fails_the_call_DeadlineExceeded_and_travels_as_timeout_nano()
    {
        await using var fake = new FakeServer();
        (TtrpcClient client, RawConnection server) = await fake.ConnectAsync();
        await using var _ = client;
        await using var __ = server;
        var tasks = new TaskApi.TaskClient(client);

        Task<StateResponse> call = tasks.StateAsync(
            new() { Id = "slow" }, deadline: DateTime.UtcNow.AddMilliseconds(300), cancellationToken: Token).ResponseAsync;
        RawFrame frame = await server.ReadFrameAsync();

        // The server never answers: the client's own timer must end the call.
        RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(RawConnection.Patience, Token));
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        long timeoutNano = frame.AsRequest().TimeoutNano;
        Assert.InRange(timeoutNano, 1, 300_000_000);

        // A late answer to the abandoned stream is dropped; the connection goes on.
        await FakeServer.AnswerAsync(server, frame);
        Task<StateResponse> next = tasks.StateAsync(new() { Id = "next" }, cancellationToken: Token).ResponseAsync;
        RawFrame nextFrame = await server.ReadFrameAsync();
        await FakeServer.AnswerAsync(server, nextFrame);
        Assert.Equal("next", (await next.WaitAsync(RawConnection.Patience, Token)).Id);
    }

    [Fact]
    public async Task Deadline_already_past_fails_DeadlineExceeded_without_sending()
    {
        await using var fake = new FakeServer();
        (TtrpcClient client, RawConnection server) = await fake.ConnectAsync();
        await using var _ = client;
        await using var __ = server;
        var tasks = new TaskApi.TaskClient(client);

        RpcException error = await Assert.ThrowsAsync<RpcException>(() => tasks.StateAsync(
            new() { Id = "late" }, deadline: DateTime.UtcNow.AddSeconds(-1), cancellationToken: Token).ResponseAsync);

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        await AssertNextCallIsFirstOnTheWireAsync(client, server);
    }

    [Fact]
    public async Task Request_over_4_MiB_is_refused_ResourceExhausted_without_sending()
    {
        await using var fake = new FakeServer();
        (TtrpcClient client, RawConnection server) = await fake.ConnectAsync();
        await using var _ = client;
        await using var __ = server;
        var tasks = new TaskApi.TaskClient(client);

        RpcException error = await Assert.ThrowsAsync<RpcException>(() => tasks.StateAsync(
            new() { Id = new string('x', 4 << 20) }, cancellationToken: Token).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        await AssertNextCallIsFirstOnTheWireAsync(client, server);
    }

    [Fact]
    public async Task Request_pushed_over_4_MiB_by_its_metadata_is_refused_ResourceExhausted_without_sending()
    {
        await using var fake = new FakeServer();
        (TtrpcClient client, RawConnection server) = await fake.ConnectAsync();
        await using var _ = client;
        await using var __ = server;
        var tasks = new TaskApi.TaskClient(client);

        RpcException error = await Assert.ThrowsAsync<RpcException>(() => tasks.StateAsync(
            new() { Id = "small" },
            new Metadata { { "padding", new string('m', 4 << 20) } },
            cancellationToken: Token).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        await AssertNextCallIsFirstOnTheWireAsync(client, server);
    }

    [Fact]
    public async Task Request_just_under_4_MiB_is_sent()
    {
        await using var fake = new FakeServer();
        (TtrpcClient client, RawConnection server) = await fake.ConnectAsync();
        await using var _ = client;
        await using var __ = server;
        var tasks = new TaskApi.TaskClient(client);

        string id = new('x', (4 << 20) - 100);
        Task<StateResponse> call = tasks.StateAsync(new() { Id = id }, cancellationToken: Token).ResponseAsync;
        RawFrame frame = await server.ReadFrameAsync();
        Assert.InRange(frame.Length, (4u << 20) - 100, 4u << 20);
        await FakeServer.AnswerAsync(server, frame);
        Assert.Equal(id, (await call).Id);
    }

    [Fact]
    public async Task Cancelled_call_fails_Cancelled_and_its_late_answer_is_dropped()
    {
        await using var fake = new FakeServer();
        (TtrpcClient client, RawConnection server) = await fake.ConnectAsync();
        await using var _ = client;
        await using var __ = server;
        var tasks = new TaskApi.TaskClient(client);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Token);

        Task<StateResponse> call = tasks.StateAsync(new() { Id = "never mind" }, cancellationToken: cancel.Token).ResponseAsync;
        RawFrame frame = await server.ReadFrameAsync();
        await cancel.CancelAsync();

        RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(RawConnection.Patience, Token));
        Assert.Equal(StatusCode.Cancelled, error.StatusCode);

        await FakeServer.AnswerAsync(server, frame);
        Task<StateResponse> next = tasks.StateAsync(new() { Id = "next" }, cancellationToken: Token).ResponseAsync;
        RawFrame nextFrame = await server.ReadFrameAsync();
        Assert.Equal(3u, nextFrame.StreamId);
        await FakeServer.AnswerAsync(server, nextFrame);
        Assert.Equal("next", (await next.WaitAsync(RawConnection.Patience, Token)).Id);
    }

    [Fact]
    public async Task Response_over_the_cap_fails_that_call_ResourceExhausted_and_connection_kept()
    {
        await using var fake = new FakeServer();
        (TtrpcClient client, RawConnection server) = await fake.ConnectAsync();
        await using var _ = client;
        await using var __ = server;
        var tasks = new TaskApi.TaskClient(client);

        Task<StateResponse> call = tasks.StateAsync(new() { Id = "big" }, cancellationToken: Token).ResponseAsync;
        RawFrame frame = await server.ReadFrameAsync();
        await server.SendFrameAsync(frame.StreamId, RawConnection.ResponseType, new byte[(4 << 20) + 1]);

        RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(RawConnection.Patience, Token));
        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);

        Task<StateResponse> next = tasks.StateAsync(new() { Id = "next" }, cancellationToken: Token).ResponseAsync;
        await FakeServer.AnswerAsync(server, await server.ReadFrameAsync());
        Assert.Equal("next", (await next.WaitAsync(RawConnection.Patience, Token)).Id);
    }

    [Fact]
    public async Task Error_status_from_the_server_becomes_an_RpcException()
    {
        await using var fake = new FakeServer();
        (TtrpcClient client, RawConnection server) = await fake.ConnectAsync();
        await using var _ = client;
        await using var __ = server;
        var tasks = new TaskApi.TaskClient(client);

        Task<StateResponse> call = tasks.StateAsync(new() { Id = "ghost" }, cancellationToken: Token).ResponseAsync;
        RawFrame frame = await server.ReadFrameAsync();
        var response = new Response { Status = new Wire.Status { Code = (int)StatusCode.NotFound, Message = "no ghost" } };
        await server.SendFrameAsync(frame.StreamId, RawConnection.ResponseType, response.ToByteArray());

        RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(RawConnection.Patience, Token));
        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Equal("no ghost", error.Status.Detail);
    }

    [Fact]
    public async Task Concurrent_callers_put_stream_ids_on_the_wire_in_increasing_order()
    {
        const int Threads = 8;
        const int CallsPerThread = 300;
        await using var fake = new FakeServer();
        (TtrpcClient client, RawConnection server) = await fake.ConnectAsync();
        var tasks = new TaskApi.TaskClient(client);
        Task<List<uint>> echo = FakeServer.EchoUntilClosedAsync(server);

        using var go = new Barrier(Threads);
        Task[] workers = Enumerable.Range(0, Threads).Select(t => Task.Factory.StartNew(async () =>
        {
            go.SignalAndWait(Token);
            Task<StateResponse>[] calls = Enumerable.Range(0, CallsPerThread)
                .Select(i => tasks.StateAsync(new() { Id = $"{t}/{i}" }, cancellationToken: Token).ResponseAsync)
                .ToArray();
            await Task.WhenAll(calls);
        }, Token, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap()).ToArray();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60), Token);
        await client.DisposeAsync();

        List<uint> ids = await echo.WaitAsync(RawConnection.Patience, Token);
        await server.DisposeAsync();
        Assert.Equal(Threads * CallsPerThread, ids.Count);
        for (int i = 1; i < ids.Count; i++)
        {
            Assert.True(ids[i] > ids[i - 1], $"stream id {ids[i]} went on the wire after {ids[i - 1]}");
        }
    }

    [Fact]
    public async Task Blocking_call_works()
    {
        await using var fake = new FakeServer();
        (TtrpcClient client, RawConnection server) = await fake.ConnectAsync();
        await using var _ = client;
        await using var __ = server;
        var tasks = new TaskApi.TaskClient(client);
        Task answering = Task.Run(async () => await FakeServer.AnswerAsync(server, await server.ReadFrameAsync()), Token);

        StateResponse response = await Task.Run(() => tasks.State(new() { Id = "sync" }, cancellationToken: Token), Token);

        Assert.Equal("sync", response.Id);
        await answering;
    }

    [Fact]
    public async Task Connecting_to_a_missing_socket_fails()
    {
        string missing = Path.Combine(Path.GetTempPath(), $"ttrpc-missing-{Guid.NewGuid():N}.sock");

        await Assert.ThrowsAnyAsync<SocketException>(
            () => TtrpcClient.ConnectAsync("unix://" + missing, cancellationToken: Token));
    }

    private static async Task AssertNextCallIsFirstOnTheWireAsync(TtrpcClient client, RawConnection server)
    {
        Task<StateResponse> call = new TaskApi.TaskClient(client)
            .StateAsync(new() { Id = "first" }, cancellationToken: Token).ResponseAsync;
        RawFrame frame = await server.ReadFrameAsync();
        Assert.Equal(1u, frame.StreamId);
        Assert.Equal("first", StateRequest.Parser.ParseFrom(frame.AsRequest().Payload).Id);
        await FakeServer.AnswerAsync(server, frame);
        Assert.Equal("first", (await call.WaitAsync(RawConnection.Patience, Token)).Id);
    }
}
