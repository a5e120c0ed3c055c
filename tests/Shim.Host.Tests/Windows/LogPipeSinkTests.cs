using System.IO.Pipes;
using System.Text;
using PluggableShim.Host.Windows;

namespace PluggableShim.Host.Tests.Windows;

/// <summary>
/// The shim's log pipe over .NET's named-pipe emulation (a Unix socket): containerd's reader comes
/// and goes, and a stalled reader must not stall the loggers. Windows' own pipes are not run here.
/// </summary>
public sealed class LogPipeSinkTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string NewName() => "psh-logpipe-test-" + Guid.NewGuid().ToString("N")[..12];

    [Fact]
    public async Task A_reader_that_left_silently_is_replaced_by_the_next_one_which_gets_later_lines()
    {
        string name = NewName();
        using LogPipeSink sink = LogPipeSink.Serve(name);
        using (var first = new NamedPipeClientStream(".", name, PipeDirection.In))
        {
            await first.ConnectAsync(TimeSpan.FromSeconds(5), Token);
            sink.Write("before\n"u8);
            Assert.Equal("before\n", await ReadUntilAsync(first, "before\n"));
        }

        // containerd restarted: its new reader dials before the shim writes anything.
        using var second = new NamedPipeClientStream(".", name, PipeDirection.In);
        await second.ConnectAsync(TimeSpan.FromSeconds(5), Token);
        sink.Write("after\n"u8);

        Assert.Contains("after\n", await ReadUntilAsync(second, "after\n"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lines_written_before_any_reader_are_sent_when_one_connects()
    {
        string name = NewName();
        using LogPipeSink sink = LogPipeSink.Serve(name);
        sink.Write("early\n"u8);

        using var reader = new NamedPipeClientStream(".", name, PipeDirection.In);
        await reader.ConnectAsync(TimeSpan.FromSeconds(5), Token);
        sink.Write("late\n"u8);

        Assert.Equal("early\nlate\n", await ReadUntilAsync(reader, "late\n"));
    }

    [Fact]
    public async Task A_reader_that_stops_reading_does_not_block_writers()
    {
        string name = NewName();
        using LogPipeSink sink = LogPipeSink.Serve(name);
        using var reader = new NamedPipeClientStream(".", name, PipeDirection.In);
        await reader.ConnectAsync(TimeSpan.FromSeconds(5), Token);
        sink.Write("ready\n"u8);
        Assert.Equal("ready\n", await ReadUntilAsync(reader, "ready\n")); // the sink now writes to this reader
        byte[] line = Encoding.ASCII.GetBytes(new string('x', 1023) + "\n");

        // Far more than the socket's buffers hold: a write done under the sink's lock would block.
        Task written = Task.Run(() =>
        {
            for (int i = 0; i < 4096; i++)
            {
                sink.Write(line);
            }
        }, Token);

        await written.WaitAsync(TimeSpan.FromSeconds(10), Token);
    }

    private static async Task<string> ReadUntilAsync(Stream stream, string text)
    {
        var seen = new StringBuilder();
        byte[] buffer = new byte[4096];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
        timeout.CancelAfter(TimeSpan.FromSeconds(10));
        while (!seen.ToString().Contains(text, StringComparison.Ordinal))
        {
            int n = await stream.ReadAsync(buffer, timeout.Token);
            if (n == 0)
            {
                break;
            }

            seen.Append(Encoding.UTF8.GetString(buffer, 0, n));
        }

        return seen.ToString();
    }
}
