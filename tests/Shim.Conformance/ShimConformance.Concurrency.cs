using PluggableShim.Abstractions;
using PluggableShim.Contracts.Task;
using Task = System.Threading.Tasks.Task;

namespace PluggableShim.Conformance;

public abstract partial class ShimConformance<TTarget>
{
    /// <summary>The annotation containerd's CRI plugin puts on a pod's containers; the host groups by it.</summary>
    protected const string SandboxAnnotation = "io.kubernetes.cri.sandbox-id";

    /// <summary>
    /// Several containers of one pod share one daemon (start joins it) and run in parallel, each
    /// with its own output and exit code; the daemon ends after the last one's Delete and Shutdown.
    /// </summary>
    [Fact]
    public async Task Several_tasks_of_one_pod_share_a_daemon_and_run_in_parallel()
    {
        string pod = NewId("pod");
        var annotations = new Dictionary<string, string> { [SandboxAnnotation] = pod };
        await using LaunchedShim first = await LaunchAsync("pod0", ProcessBehavior.ExitWith(10, "out-0"), annotations);
        var shims = new List<LaunchedShim> { first };
        try
        {
            for (int i = 1; i < 4; i++)
            {
                shims.Add(await LaunchAsync($"pod{i}", ProcessBehavior.ExitWith(10 + i, $"out-{i}"), annotations, first.Events));
            }

            Assert.All(shims, s => Assert.Equal(first.DaemonPid, s.DaemonPid));
            Assert.All(shims, s => Assert.Equal(first.Connection.Address, s.Connection.Address));

            ClientIo[] ios = await Task.WhenAll(shims.Select(CreateAsync));
            try
            {
                await Task.WhenAll(shims.Select(s => s.Task.StartAsync(new StartRequest { Id = s.Id }, cancellationToken: Token).ResponseAsync));
                WaitResponse[] exits = await Task.WhenAll(shims.Select(s =>
                    s.Task.WaitAsync(new WaitRequest { Id = s.Id }, cancellationToken: Token).ResponseAsync)).WaitAsync(Bound, Token);

                Assert.Equal([10u, 11u, 12u, 13u], exits.Select(e => e.ExitStatus));
                await Task.WhenAll(ios.Select((io, i) => io.WaitForOutputAsync($"out-{i}\n", Bound)));
                Assert.Equal(["out-0\n", "out-1\n", "out-2\n", "out-3\n"], ios.Select(io => io.Output));
                foreach (LaunchedShim shim in shims.Skip(1))
                {
                    await shim.Task.DeleteAsync(new DeleteRequest { Id = shim.Id }, cancellationToken: Token);
                    await shim.Task.ShutdownAsync(new ShutdownRequest { Id = shim.Id }, cancellationToken: Token);
                }

                await Task.Delay(300, Token);
                Assert.True(LaunchedShim.IsAlive(first.DaemonPid), "the pod's daemon exited with a task left");
                await DeleteAndShutdownAsync(first);
                foreach (LaunchedShim shim in shims)
                {
                    Assert.Equal(["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"],
                        await first.Events.WaitForAsync(shim.Id, "/tasks/delete", Bound));
                }
            }
            finally
            {
                foreach (ClientIo io in ios)
                {
                    io.Dispose();
                }
            }
        }
        finally
        {
            foreach (LaunchedShim shim in shims.Skip(1))
            {
                await shim.DisposeAsync();
            }
        }
    }

    /// <summary>Several execs of one task created, started and waited for at once each get their own exit code and output.</summary>
    [Fact]
    public async Task Several_execs_run_in_parallel_each_with_its_own_exit_code()
    {
        Assert.SkipUnless(Supports(TaskCapabilities.Exec), "the plugin does not declare Exec");
        await using LaunchedShim shim = await LaunchAsync("execs", ProcessBehavior.RunUntilKilled());
        using ClientIo io = await CreateAsync(shim);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        ClientIo[] ios = [.. Enumerable.Range(0, 5).Select(_ => new ClientIo(Installation.WorkDirectory))];
        try
        {
            string[] ids = [.. Enumerable.Range(0, 5).Select(i => $"par{i}")];
            await Task.WhenAll(ids.Select((id, i) => shim.Task.ExecAsync(
                ExecRequest(shim, id, new ProcessBehavior { Stdout = [$"exec-{i}"], Sleep = TimeSpan.FromMilliseconds(200), ExitCode = 20 + i }, ios[i]),
                cancellationToken: Token).ResponseAsync));
            Task<WaitResponse>[] waits = [.. ids.Select(id => shim.Task.WaitAsync(new WaitRequest { Id = shim.Id, ExecId = id }, cancellationToken: Token).ResponseAsync)];
            await Task.WhenAll(ids.Select(id => shim.Task.StartAsync(new StartRequest { Id = shim.Id, ExecId = id }, cancellationToken: Token).ResponseAsync));

            WaitResponse[] exits = await Task.WhenAll(waits).WaitAsync(Bound, Token);

            Assert.Equal([20u, 21u, 22u, 23u, 24u], exits.Select(e => e.ExitStatus));
            await Task.WhenAll(ios.Select((io, i) => io.WaitForOutputAsync($"exec-{i}\n", Bound)));
            Assert.Equal(["exec-0\n", "exec-1\n", "exec-2\n", "exec-3\n", "exec-4\n"], ios.Select(i => i.Output));
            await Task.WhenAll(ids.Select(id => shim.Task.DeleteAsync(new DeleteRequest { Id = shim.Id, ExecId = id }, cancellationToken: Token).ResponseAsync));
        }
        finally
        {
            foreach (ClientIo execIo in ios)
            {
                execIo.Dispose();
            }
        }

        await shim.Task.KillAsync(new KillRequest { Id = shim.Id, Signal = 9 }, cancellationToken: Token);
        await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);
        await DeleteAndShutdownAsync(shim);
    }
}
