using System.Net.Sockets;
using Google.Protobuf;
using Grpc.Core;
using PluggableShim.Ttrpc.Tests.Support;
using PluggableShim.Ttrpc.Wire;
using StateResponse = PluggableShim.Contracts.Task.StateResponse;
using TaskApi = PluggableShim.Contracts.Task.Task;

namespace PluggableShim.Ttrpc.Tests.Server;

/// <summary>A connection's life: broken peers, and many calls sharing one connection.</summary>
public sealed class ConnectionTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("mid-header")]
    [InlineData("mid-payload")]
    public async Task Peer_closing_inside_a_frame_closes_that_connection_cancels_its_calls_and_spares_others(string where)
    {
        await using var harness = ServerHarness.Start();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Task.OnState = async (request, context) =>
        {
            if (request.Id != "hang")
            {
                return new StateResponse { Id = request.Id };
            }

            try
            {
                started.TrySetResult();
                await Task.Delay(Timeout.Infinite, context.CancellationToken);
                return new StateResponse();
            }
            finally
            {
                finished.TrySetResult();
            }
        };
        await using RawConnection broken = await harness.ConnectRawAsync();
        await using RawConnection healthy = await harness.ConnectRawAsync();
        await broken.SendRequestAsync(1, RawConnection.StateRequest("hang"));
        await started.Task.WaitAsync(RawConnection.Patience, Token);

        byte[] next = RawConnection.Frame(3, RawConnection.RequestType, RawConnection.StateRequest("cut").ToByteArray());
        await broken.SendAsync(where == "mid-header" ? next.AsMemory(0, 6) : next.AsMemory(0, next.Length - 3));
        broken.Socket.Shutdown(SocketShutdown.Send);

        Assert.True(await broken.WaitForPeerCloseAsync(), "the server kept a connection whose peer left inside a frame");
        await finished.Task.WaitAsync(RawConnection.Patience, Token);
        await healthy.AssertUsableAsync(1);
        Assert.DoesNotContain("cut", harness.Task.Calls);
    }

    [Fact]
    public async Task Peer_closing_between_frames_cancels_its_in_flight_calls()
    {
        await using var harness = ServerHarness.Start();
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Task.OnState = async (_, context) =>
        {
            context.CancellationToken.Register(() => cancelled.TrySetResult());
            started.TrySetResult();
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
            return new StateResponse();
        };
        RawConnection raw = await harness.ConnectRawAsync();
        await raw.SendRequestAsync(1, RawConnection.StateRequest("orphan"));
        await started.Task.WaitAsync(RawConnection.Patience, Token);

        await raw.DisposeAsync();

        await cancelled.Task.WaitAsync(RawConnection.Patience, Token);
    }

    [Fact]
    public async Task Two_hundred_calls_on_one_connection_finishing_in_reverse_order_each_get_their_own_answer()
    {
        const int Calls = 200;
        await using var harness = ServerHarness.Start();
        var gates = new Dictionary<string, TaskCompletionSource>();
        var allArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        for (int i = 0; i < Calls; i++)
        {
            gates["c" + i] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        harness.Task.OnState = async (request, _) =>
        {
            if (harness.Task.Calls.Count == Calls)
            {
                allArrived.TrySetResult();
            }

            await gates[request.Id].Task;
            return new StateResponse { Id = request.Id, Pid = uint.Parse(request.Id[1..], provider: null) };
        };
        await using TtrpcClient client = await harness.ConnectAsync();
        var tasks = new TaskApi.TaskClient(client);

        Task<StateResponse>[] calls = Enumerable.Range(0, Calls)
            .Select(i => tasks.StateAsync(new() { Id = "c" + i }, cancellationToken: Token).ResponseAsync)
            .ToArray();
        await allArrived.Task.WaitAsync(RawConnection.Patience, Token);

        for (int i = Calls - 1; i >= 0; i--)
        {
            Assert.All(calls.Take(i + 1), c => Assert.False(c.IsCompleted));
            gates["c" + i].SetResult();
            StateResponse answer = await calls[i].WaitAsync(RawConnection.Patience, Token);
            Assert.Equal("c" + i, answer.Id);
            Assert.Equal((uint)i, answer.Pid);
        }
    }

    [Fact]
    public async Task Many_threads_calling_on_one_connection_all_succeed()
    {
        // Callers on different threads race to take stream ids; the server refuses an id
        // that arrives after a larger one, so ids must reach the wire in the order taken.
        const int Threads = 8;
        const int CallsPerThread = 400;
        await using var harness = ServerHarness.Start();
        await using TtrpcClient client = await harness.ConnectAsync();
        var tasks = new TaskApi.TaskClient(client);

        using var go = new Barrier(Threads);
        Task[] workers = Enumerable.Range(0, Threads).Select(t => Task.Factory.StartNew(async () =>
        {
            go.SignalAndWait(Token);
            var inFlight = new List<(string Id, Task<StateResponse> Call)>();
            for (int i = 0; i < CallsPerThread; i++)
            {
                string id = $"t{t}-{i}";
                inFlight.Add((id, tasks.StateAsync(new() { Id = id }, cancellationToken: Token).ResponseAsync));
            }

            foreach ((string id, Task<StateResponse> call) in inFlight)
            {
                Assert.Equal(id, (await call).Id);
            }
        }, Token, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap()).ToArray();

        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60), Token);
        Assert.Equal(Threads * CallsPerThread, harness.Task.Calls.Count);
    }

    [Fact]
    public async Task Frames_other_than_requests_are_ignored_and_connection_kept()
    {
        await using var harness = ServerHarness.Start();
        await using RawConnection raw = await harness.ConnectRawAsync();

        await raw.SendFrameAsync(1, RawConnection.ResponseType, new Response { Payload = ByteString.CopyFromUtf8("stray") }.ToByteArray());

        await raw.AssertUsableAsync(3);
    }
}
