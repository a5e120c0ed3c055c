using PluggableShim.Contracts.Task;
using Task = System.Threading.Tasks.Task;

namespace PluggableShim.Conformance;

public abstract partial class ShimConformance<TTarget>
{
    /// <summary>The process's stdout and stderr reach the client's FIFOs, each on its own.</summary>
    [Fact]
    public async Task Stdout_and_stderr_reach_the_client_fifos()
    {
        await using LaunchedShim shim = await LaunchAsync("out",
            new ProcessBehavior { Stdout = ["to-stdout", "line two"], Stderr = ["to-stderr"] });
        using ClientIo io = await CreateAsync(shim);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);
        await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);

        // The exit is reported once the output is in the FIFOs; our reader may not have it yet.
        await io.WaitForOutputAsync("line two\n", Bound);
        await io.WaitForErrorOutputAsync("to-stderr\n", Bound);
        Assert.Equal("to-stdout\nline two\n", io.Output);
        Assert.Equal("to-stderr\n", io.ErrorOutput);
        await DeleteAndShutdownAsync(shim);
    }

    /// <summary>
    /// What the client writes reaches the process's stdin; CloseIO gives it end of file (after what
    /// was written), its output keeps flowing after that, and a second CloseIO is harmless.
    /// </summary>
    [Fact]
    public async Task Stdin_reaches_the_process_and_CloseIO_gives_it_end_of_file_while_output_keeps_flowing()
    {
        await using LaunchedShim shim = await LaunchAsync("in", new ProcessBehavior { EchoStdin = true, ExitCode = 4 });
        using ClientIo io = await CreateAsync(shim);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);

        io.Write("ping\n");
        await io.WaitForOutputAsync("got-ping\n", Bound);
        io.Write("last\n");
        await shim.Task.CloseIOAsync(new CloseIORequest { Id = shim.Id, Stdin = true }, cancellationToken: Token);
        await shim.Task.CloseIOAsync(new CloseIORequest { Id = shim.Id, Stdin = true }, cancellationToken: Token);
        WaitResponse exited = await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);

        Assert.Equal(4u, exited.ExitStatus);
        await io.WaitForOutputAsync("stdin-eof\n", Bound);
        Assert.Equal("got-ping\ngot-last\nstdin-eof\n", io.Output);
        await DeleteAndShutdownAsync(shim);
    }

    /// <summary>A task created without IO (empty paths) runs; its output goes nowhere.</summary>
    [Fact]
    public async Task A_task_without_io_runs_and_exits()
    {
        await using LaunchedShim shim = await LaunchAsync("noio", ProcessBehavior.ExitWith(5, "discarded"));
        await shim.Task.CreateAsync(shim.CreateRequest(null), cancellationToken: Token);
        await shim.Task.StartAsync(new StartRequest { Id = shim.Id }, cancellationToken: Token);

        WaitResponse exited = await shim.Task.WaitAsync(new WaitRequest { Id = shim.Id }, cancellationToken: Token).ResponseAsync.WaitAsync(Bound, Token);

        Assert.Equal(5u, exited.ExitStatus);
        await DeleteAndShutdownAsync(shim);
    }
}
