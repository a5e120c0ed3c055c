using Grpc.Core;
using PluggableShim.Ttrpc.Tests.Support;
using StateRequest = PluggableShim.Contracts.Task.StateRequest;
using StateResponse = PluggableShim.Contracts.Task.StateResponse;
using TaskApi = PluggableShim.Contracts.Task.Task;

namespace PluggableShim.Ttrpc.Tests.Transport;

/// <summary>
/// ttrpc over named pipes, the Windows transport. Off Windows .NET emulates a named pipe with a
/// Unix socket under the temp folder, so server and client run here through the same classes;
/// what only Windows does (its ACLs, its pipe file system) is not exercised.
/// </summary>
public sealed class NamedPipeTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    // The shape of a shim's pipe (protocol.md §2), unique per test.
    private static string NewPipeName() =>
        $@"ProtectedPrefix\Administrators\containerd-shim-t-{Guid.NewGuid().ToString("N")[..12]}-pipe";

    [Fact]
    public async Task Several_clients_at_once_each_get_their_own_answers_over_one_pipe()
    {
        string name = NewPipeName();
        await using var server = new TtrpcServer();
        TaskApi.BindService(server.Binder, new ScriptedTask());
        server.Serve(TtrpcListener.ListenNamedPipe(name));

        var clients = new List<TtrpcClient>();
        try
        {
            for (int i = 0; i < 4; i++)
            {
                clients.Add(await TtrpcClient.ConnectAsync(@"\\.\pipe\" + name, cancellationToken: Token));
            }

            StateResponse[] answers = await Task.WhenAll(clients.SelectMany((client, i) => Enumerable.Range(0, 10).Select(j =>
                new TaskApi.TaskClient(client).StateAsync(new StateRequest { Id = $"c{i}-{j}" }, cancellationToken: Token).ResponseAsync)));

            Assert.Equal(40, answers.Length);
            Assert.Equal(
                clients.SelectMany((_, i) => Enumerable.Range(0, 10).Select(j => $"c{i}-{j}")).Order(),
                answers.Select(a => a.Id).Order());
            Assert.All(answers, a => Assert.Equal(42u, a.Pid));
        }
        finally
        {
            foreach (TtrpcClient client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_client_dialling_right_after_listen_is_served_before_the_accept_loop_has_run()
    {
        string name = NewPipeName();
        await using TtrpcListener listener = TtrpcListener.ListenNamedPipe(name);

        // Nothing accepts yet; the first instance exists, so the connect completes.
        Task<TtrpcClient> connecting = TtrpcClient.ConnectAsync(@"\\.\pipe\" + name, cancellationToken: Token);
        await using var server = new TtrpcServer();
        TaskApi.BindService(server.Binder, new ScriptedTask());
        server.Serve(listener);
        await using TtrpcClient client = await connecting;

        StateResponse answer = await new TaskApi.TaskClient(client).StateAsync(new StateRequest { Id = "early" }, cancellationToken: Token);
        Assert.Equal("early", answer.Id);
    }

    [Fact]
    public async Task A_withdrawn_pipe_keeps_its_connections_and_a_successor_serves_the_name()
    {
        string name = NewPipeName();
        string address = @"\\.\pipe\" + name;
        await using var server = new TtrpcServer();
        TaskApi.BindService(server.Binder, new ScriptedTask());
        TtrpcListener listener = TtrpcListener.ListenNamedPipe(name);
        server.Serve(listener);
        TtrpcClient connected = await TtrpcClient.ConnectAsync(address, cancellationToken: Token);

        // Accepted (a connection still in the backlog is lost with the instance, as on a socket).
        Assert.Equal("before", (await new TaskApi.TaskClient(connected).StateAsync(new StateRequest { Id = "before" }, cancellationToken: Token)).Id);

        // What a daemon does when it decides to exit: withdraw the pipe, keep answering.
        await listener.DisposeAsync();

        if (OperatingSystem.IsWindows())
        {
            // Off Windows the emulation's socket still takes connections into its backlog.
            await Assert.ThrowsAsync<IOException>(() => TtrpcClient.ConnectAsync(address, cancellationToken: Token));
        }

        StateResponse still = await new TaskApi.TaskClient(connected).StateAsync(new StateRequest { Id = "still" }, cancellationToken: Token);
        Assert.Equal("still", still.Id);

        // The first server's accept loop ends quietly, not with a fault, when it is shut down.
        await connected.DisposeAsync();
        using (var drain = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            await server.ShutdownAsync(drain.Token);
        }

        // The successor daemon of the group serves the same name; nothing stale is in its way.
        await using var successor = new TtrpcServer();
        var successorTask = new ScriptedTask { OnState = (r, _) => Task.FromResult(new StateResponse { Id = r.Id, Pid = 7 }) };
        TaskApi.BindService(successor.Binder, successorTask);
        successor.Serve(TtrpcListener.ListenNamedPipe(name));
        await using TtrpcClient next = await TtrpcClient.ConnectAsync(address, cancellationToken: Token);
        StateResponse fromSuccessor = await new TaskApi.TaskClient(next).StateAsync(new StateRequest { Id = "next" }, cancellationToken: Token);
        Assert.Equal(7u, fromSuccessor.Pid);
    }

    [Fact]
    public async Task Dialling_a_pipe_nobody_serves_fails_with_IOException_within_its_bound()
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        IOException error = await Assert.ThrowsAsync<IOException>(
            () => TtrpcClient.ConnectAsync(@"\\.\pipe\" + NewPipeName(), cancellationToken: Token));
        Assert.Contains("no server on pipe", error.Message, StringComparison.Ordinal);
        Assert.InRange(watch.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(15));
    }

    [Fact]
    public async Task Shutdown_over_a_pipe_lets_the_call_in_flight_answer()
    {
        string name = NewPipeName();
        var server = new TtrpcServer();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        TaskApi.BindService(server.Binder, new ScriptedTask
        {
            OnState = async (r, _) =>
            {
                started.TrySetResult();
                await release.Task;
                return new StateResponse { Id = r.Id };
            },
        });
        server.Serve(TtrpcListener.ListenNamedPipe(name));
        await using TtrpcClient client = await TtrpcClient.ConnectAsync(@"\\.\pipe\" + name, cancellationToken: Token);
        Task<StateResponse> call = new TaskApi.TaskClient(client).StateAsync(new StateRequest { Id = "last" }, cancellationToken: Token).ResponseAsync;
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10), Token);

        Task shutdown = server.ShutdownAsync(Token);
        release.SetResult();

        Assert.Equal("last", (await call.WaitAsync(TimeSpan.FromSeconds(10), Token)).Id);
        await shutdown.WaitAsync(TimeSpan.FromSeconds(10), Token);
        await server.DisposeAsync();
        var error = await Assert.ThrowsAnyAsync<Exception>(() => new TaskApi.TaskClient(client).StateAsync(new StateRequest { Id = "after" }, cancellationToken: Token).ResponseAsync);
        Assert.True(error is RpcException { StatusCode: StatusCode.Unavailable }, $"expected Unavailable after shutdown, got {error}");
    }
}
