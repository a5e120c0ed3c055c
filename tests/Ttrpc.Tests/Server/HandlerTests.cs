using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using PluggableShim.Ttrpc.Tests.Support;
using PluggableShim.Ttrpc.Wire;
using StateResponse = PluggableShim.Contracts.Task.StateResponse;

namespace PluggableShim.Ttrpc.Tests.Server;

/// <summary>What a handler sees of its call, and how its outcome reaches the wire.</summary>
public sealed class HandlerTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Handler_exception_is_answered_Unknown_with_its_message_and_connection_kept()
    {
        await using var harness = ServerHarness.Start();
        harness.Task.OnState = (request, _) => request.Id == "boom"
            ? throw new InvalidOperationException("the reaper ate it")
            : Task.FromResult(new StateResponse { Id = request.Id });
        await using RawConnection raw = await harness.ConnectRawAsync();

        await raw.SendRequestAsync(1, RawConnection.StateRequest("boom"));

        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal((int)StatusCode.Unknown, answer.Status.Code);
        Assert.Equal("the reaper ate it", answer.Status.Message);
        await raw.AssertUsableAsync(3);
    }

    [Fact]
    public async Task Handler_failing_after_an_await_is_answered_Unknown()
    {
        await using var harness = ServerHarness.Start();
        harness.Task.OnState = async (_, _) =>
        {
            await Task.Yield();
            throw new IOException("disk gone");
        };
        await using RawConnection raw = await harness.ConnectRawAsync();

        await raw.SendRequestAsync(1, RawConnection.StateRequest("late"));

        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal((int)StatusCode.Unknown, answer.Status.Code);
        Assert.Equal("disk gone", answer.Status.Message);
    }

    [Theory]
    [InlineData(StatusCode.NotFound)]
    [InlineData(StatusCode.FailedPrecondition)]
    [InlineData(StatusCode.AlreadyExists)]
    public async Task Handler_RpcException_is_answered_with_its_code_and_detail(StatusCode code)
    {
        await using var harness = ServerHarness.Start();
        harness.Task.OnState = (request, _) => throw new RpcException(new Grpc.Core.Status(code, "container " + request.Id));
        await using TtrpcClient client = await harness.ConnectAsync();
        var tasks = new Contracts.Task.Task.TaskClient(client);

        RpcException error = await Assert.ThrowsAsync<RpcException>(
            () => tasks.StateAsync(new() { Id = "c1" }, cancellationToken: Token).ResponseAsync);

        Assert.Equal(code, error.StatusCode);
        Assert.Equal("container c1", error.Status.Detail);
    }

    [Fact]
    public async Task Handler_exception_with_a_huge_message_is_still_answered()
    {
        await using var harness = ServerHarness.Start();
        harness.Task.OnState = (request, _) => request.Id == "huge"
            ? throw new InvalidOperationException(new string('x', 5 << 20))
            : Task.FromResult(new StateResponse { Id = request.Id });
        await using RawConnection raw = await harness.ConnectRawAsync();

        await raw.SendRequestAsync(1, RawConnection.StateRequest("huge"));

        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal((int)StatusCode.Unknown, answer.Status.Code);
        Assert.StartsWith("xxxx", answer.Status.Message, StringComparison.Ordinal);
        await raw.AssertUsableAsync(3);
    }

    [Fact]
    public async Task Response_over_the_cap_is_answered_ResourceExhausted_and_connection_kept()
    {
        await using var harness = ServerHarness.Start();
        harness.Task.OnState = (request, _) => Task.FromResult(request.Id == "big"
            ? new StateResponse { Id = request.Id, Bundle = new string('b', 4 << 20) }
            : new StateResponse { Id = request.Id });
        await using RawConnection raw = await harness.ConnectRawAsync();

        await raw.SendRequestAsync(1, RawConnection.StateRequest("big"));

        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal((int)StatusCode.ResourceExhausted, answer.Status.Code);
        await raw.AssertUsableAsync(3);
    }

    [Fact]
    public async Task Timeout_nano_cancels_the_handler_and_is_answered_DeadlineExceeded()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2024, 5, 1, 12, 0, 0, TimeSpan.Zero));
        await using var harness = ServerHarness.Start(new TtrpcServerOptions { TimeProvider = time });
        var started = new TaskCompletionSource<DateTime>(TaskCreationOptions.RunContinuationsAsynchronously);
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Task.OnState = async (request, context) =>
        {
            if (request.Id != "slow")
            {
                return new StateResponse { Id = request.Id };
            }

            context.CancellationToken.Register(() => cancelled.TrySetResult());
            started.TrySetResult(context.Deadline);
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
            return new StateResponse();
        };
        await using RawConnection raw = await harness.ConnectRawAsync();

        await raw.SendRequestAsync(1, RawConnection.StateRequest("slow", timeoutNano: 2_000_000_000));
        DateTime deadline = await started.Task.WaitAsync(RawConnection.Patience, Token);
        Assert.Equal(time.GetUtcNow().UtcDateTime.AddSeconds(2), deadline);
        Assert.False(cancelled.Task.IsCompleted);

        time.Advance(TimeSpan.FromSeconds(2));

        await cancelled.Task.WaitAsync(RawConnection.Patience, Token);
        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal((int)StatusCode.DeadlineExceeded, answer.Status.Code);
        await raw.AssertUsableAsync(3);
    }

    [Fact]
    public async Task Handler_without_timeout_nano_has_no_deadline()
    {
        await using var harness = ServerHarness.Start();
        var seen = new TaskCompletionSource<DateTime>(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Task.OnState = (request, context) =>
        {
            seen.TrySetResult(context.Deadline);
            return Task.FromResult(new StateResponse { Id = request.Id });
        };
        await using RawConnection raw = await harness.ConnectRawAsync();

        await raw.SendRequestAsync(1, RawConnection.StateRequest("relaxed"));

        Assert.Equal(0, (await raw.ReadResponseAsync(1)).Status?.Code ?? 0);
        Assert.Equal(DateTime.MaxValue, await seen.Task);
    }

    [Theory]
    [InlineData(100L * 24 * 3600 * 1_000_000_000)] // 100 days: beyond a timer's range
    [InlineData(long.MaxValue)]
    public async Task Very_long_timeout_nano_is_honoured_not_fatal(long timeoutNano)
    {
        await using var harness = ServerHarness.Start();
        var seen = new TaskCompletionSource<DateTime>(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Task.OnState = (request, context) =>
        {
            seen.TrySetResult(context.Deadline);
            return Task.FromResult(new StateResponse { Id = request.Id });
        };
        await using RawConnection raw = await harness.ConnectRawAsync();

        await raw.SendRequestAsync(1, RawConnection.StateRequest("patient", timeoutNano));

        Response answer = await raw.ReadResponseAsync(1);
        Assert.Equal(0, answer.Status?.Code ?? 0);
        Assert.True(await seen.Task > DateTime.UtcNow.AddDays(99));
        await raw.AssertUsableAsync(3);
    }

    [Fact]
    public async Task Request_metadata_reaches_the_handler()
    {
        await using var harness = ServerHarness.Start();
        var seen = new TaskCompletionSource<Metadata>(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Task.OnState = (request, context) =>
        {
            seen.TrySetResult(context.RequestHeaders);
            return Task.FromResult(new StateResponse { Id = request.Id });
        };
        await using RawConnection raw = await harness.ConnectRawAsync();

        Request request = RawConnection.StateRequest("md");
        request.Metadata.Add(new KeyValue { Key = "containerd-namespace-ttrpc", Value = "k8s.io" });
        request.Metadata.Add(new KeyValue { Key = "trace", Value = "a" });
        request.Metadata.Add(new KeyValue { Key = "trace", Value = "b" });
        request.Metadata.Add(new KeyValue { Key = "weird key!", Value = "skipped, not fatal" });
        await raw.SendRequestAsync(1, request);

        Assert.Equal(0, (await raw.ReadResponseAsync(1)).Status?.Code ?? 0);
        Metadata headers = await seen.Task;
        Assert.Equal("k8s.io", headers.GetValue("containerd-namespace-ttrpc"));
        Assert.Equal(["a", "b"], headers.GetAll("trace").Select(e => e.Value));
        Assert.Null(headers.Get("weird key!"));
    }

    [Fact]
    public async Task Handler_sees_method_and_peer()
    {
        await using var harness = ServerHarness.Start();
        var seen = new TaskCompletionSource<(string Method, string Peer)>(TaskCreationOptions.RunContinuationsAsynchronously);
        harness.Task.OnState = (request, context) =>
        {
            seen.TrySetResult((context.Method, context.Peer));
            return Task.FromResult(new StateResponse { Id = request.Id });
        };
        await using TtrpcClient client = await harness.ConnectAsync();

        await new Contracts.Task.Task.TaskClient(client).StateAsync(new() { Id = "who" }, cancellationToken: Token);

        (string method, string peer) = await seen.Task;
        Assert.Equal("/containerd.task.v2.Task/State", method);
        Assert.Contains($"pid={Environment.ProcessId}", peer, StringComparison.Ordinal);
    }
}
