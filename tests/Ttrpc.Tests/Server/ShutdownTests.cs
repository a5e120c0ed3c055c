using System.Net.Sockets;
using Grpc.Core;
using PluggableShim.Ttrpc.Tests.Support;
using StateResponse = PluggableShim.Contracts.Task.StateResponse;
using TaskApi = PluggableShim.Contracts.Task.Task;

namespace PluggableShim.Ttrpc.Tests.Server;

/// <summary>Graceful shutdown lets calls finish; dispose does not wait.</summary>
public sealed class ShutdownTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ShutdownAsync_lets_an_in_flight_call_answer_then_closes_the_connection()
    {
        await using var harness = ServerHarness.Start();
        var (started, release, cancelled) = Gate(harness);
        await using TtrpcClient client = await harness.ConnectAsync();
        var tasks = new TaskApi.TaskClient(client);
        Task<StateResponse> call = tasks.StateAsync(new() { Id = "inflight" }, cancellationToken: Token).ResponseAsync;
        await started.Task.WaitAsync(RawConnection.Patience, Token);

        Task shutdown = harness.Server.ShutdownAsync(Token);

        // The listener goes first: nobody new gets in while the call is finishing.
        await Assert.ThrowsAnyAsync<SocketException>(() => RawConnection.ConnectAsync(harness.SocketPath));
        Assert.False(shutdown.IsCompleted);
        Assert.False(call.IsCompleted);

        release.SetResult();

        Assert.Equal("inflight", (await call.WaitAsync(RawConnection.Patience, Token)).Id);
        await shutdown.WaitAsync(RawConnection.Patience, Token);
        await client.Completion.WaitAsync(RawConnection.Patience, Token);
        Assert.False(cancelled.Task.IsCompleted);
    }

    [Fact]
    public async Task ShutdownAsync_closes_idle_connections_at_once()
    {
        await using var harness = ServerHarness.Start();
        await using RawConnection raw = await harness.ConnectRawAsync();
        await raw.AssertUsableAsync(1);

        await harness.Server.ShutdownAsync(Token).WaitAsync(RawConnection.Patience, Token);

        Assert.True(await raw.WaitForPeerCloseAsync());
    }

    [Fact]
    public async Task ShutdownAsync_cancelled_aborts_calls_still_running()
    {
        await using var harness = ServerHarness.Start();
        var (started, _, cancelled) = Gate(harness);
        await using TtrpcClient client = await harness.ConnectAsync();
        Task<StateResponse> call = new TaskApi.TaskClient(client)
            .StateAsync(new() { Id = "stuck" }, cancellationToken: Token).ResponseAsync;
        await started.Task.WaitAsync(RawConnection.Patience, Token);
        using var impatient = new CancellationTokenSource();

        Task shutdown = harness.Server.ShutdownAsync(impatient.Token);
        await Assert.ThrowsAnyAsync<SocketException>(() => RawConnection.ConnectAsync(harness.SocketPath));
        await impatient.CancelAsync();

        await shutdown.WaitAsync(RawConnection.Patience, Token);
        await cancelled.Task.WaitAsync(RawConnection.Patience, Token);
        RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(RawConnection.Patience, Token));
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
    }

    [Fact]
    public async Task DisposeAsync_aborts_in_flight_calls_and_stops_listening()
    {
        var harness = ServerHarness.Start();
        var (started, _, cancelled) = Gate(harness);
        await using TtrpcClient client = await harness.ConnectAsync();
        Task<StateResponse> call = new TaskApi.TaskClient(client)
            .StateAsync(new() { Id = "doomed" }, cancellationToken: Token).ResponseAsync;
        await started.Task.WaitAsync(RawConnection.Patience, Token);

        await harness.Server.DisposeAsync().AsTask().WaitAsync(RawConnection.Patience, Token);

        await cancelled.Task.WaitAsync(RawConnection.Patience, Token);
        RpcException error = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(RawConnection.Patience, Token));
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.False(File.Exists(harness.SocketPath));
        await Assert.ThrowsAnyAsync<SocketException>(() => RawConnection.ConnectAsync(harness.SocketPath));
        await harness.DisposeAsync(); // a second dispose is harmless
    }

    [Fact]
    public async Task Serve_after_dispose_is_refused()
    {
        await using var harness = ServerHarness.Start();
        await harness.Server.DisposeAsync();
        string path = harness.SocketPath + "2";

        Assert.Throws<ObjectDisposedException>(() => harness.Server.Serve(TtrpcListener.ListenUnix(path)));
        Assert.False(File.Exists(path), "the refused listener's socket was left behind");
    }

    [Fact]
    public async Task Binding_after_serving_is_refused()
    {
        await using var harness = ServerHarness.Start();

        Assert.Throws<InvalidOperationException>(
            () => TaskApi.BindService(harness.Server.Binder, new ScriptedTask()));
    }

    private static (TaskCompletionSource Started, TaskCompletionSource Release, TaskCompletionSource Cancelled) Gate(
        ServerHarness harness)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Task.OnState = async (request, context) =>
        {
            context.CancellationToken.Register(() => cancelled.TrySetResult());
            started.TrySetResult();
            await release.Task.WaitAsync(context.CancellationToken);
            return new StateResponse { Id = request.Id };
        };
        return (started, release, cancelled);
    }
}
