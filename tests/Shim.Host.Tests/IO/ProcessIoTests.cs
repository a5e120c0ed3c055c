using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using PluggableShim.Abstractions;
using PluggableShim.Host.IO;
using PluggableShim.Host.Posix;

namespace PluggableShim.Host.Tests.IO;

/// <summary>
/// The IO relay against real FIFOs and a real process (cat), with the client ends opened the
/// way containerd's clients open them: non-blocking, before Create.
/// </summary>
public sealed class ProcessIoTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("shim-io-").FullName;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Stdin_reaches_the_process_and_CloseStdin_gives_it_EOF_while_output_still_flows()
    {
        SkipUnlessLinux();
        string stdin = Fifo("stdin"), stdout = Fifo("stdout"), stderr = Fifo("stderr");
        using FileStream clientOut = OpenClientReader(stdout);
        using FileStream clientErr = OpenClientReader(stderr);

        await using ProcessIo io = await ProcessIo.OpenAsync(
            new StdioPaths(stdin, stdout, stderr, Terminal: false), Context(TimeSpan.FromSeconds(5)), NullLogger.Instance, Token);
        using FileStream clientIn = new(stdin, FileMode.Open, FileAccess.Write); // the reader exists now
        using Process cat = StartCat();
        io.Attach(new StartedProcess(cat.Id, cat.StandardInput.BaseStream, cat.StandardOutput.BaseStream, cat.StandardError.BaseStream));

        clientIn.Write("hello\n"u8);
        clientIn.Flush();
        Assert.Equal("hello\n", await ReadAsync(clientOut, 6));

        io.CloseStdin();
        io.CloseStdin(); // idempotent
        await cat.WaitForExitAsync(Token).WaitAsync(TimeSpan.FromSeconds(10), Token);
        Assert.Equal(0, cat.ExitCode);
        await io.OutputDrained.WaitAsync(TimeSpan.FromSeconds(10), Token);
    }

    [Fact]
    public async Task Output_written_after_stdin_closed_still_arrives()
    {
        SkipUnlessLinux();
        string stdin = Fifo("stdin"), stdout = Fifo("stdout");
        using FileStream clientOut = OpenClientReader(stdout);
        await using ProcessIo io = await ProcessIo.OpenAsync(
            new StdioPaths(stdin, stdout, string.Empty, Terminal: false), Context(TimeSpan.FromSeconds(5)), NullLogger.Instance, Token);
        using FileStream clientIn = new(stdin, FileMode.Open, FileAccess.Write);
        using Process shell = Start("/bin/sh", "-c", "cat; echo after-eof");
        io.Attach(new StartedProcess(shell.Id, shell.StandardInput.BaseStream, shell.StandardOutput.BaseStream, null));

        clientIn.Write("x\n"u8);
        clientIn.Flush();
        io.CloseStdin();

        Assert.Equal("x\nafter-eof\n", await ReadAsync(clientOut, 12));
    }

    [Fact]
    public async Task Client_closing_its_stdin_end_gives_the_process_EOF()
    {
        SkipUnlessLinux();
        string stdin = Fifo("stdin"), stdout = Fifo("stdout");
        using FileStream clientOut = OpenClientReader(stdout);
        await using ProcessIo io = await ProcessIo.OpenAsync(
            new StdioPaths(stdin, stdout, string.Empty, Terminal: false), Context(TimeSpan.FromSeconds(5)), NullLogger.Instance, Token);
        using Process cat = StartCat();
        io.Attach(new StartedProcess(cat.Id, cat.StandardInput.BaseStream, cat.StandardOutput.BaseStream, null));
        using (FileStream clientIn = new(stdin, FileMode.Open, FileAccess.Write))
        {
            clientIn.Write("abc"u8);
        }

        Assert.Equal("abc", await ReadAsync(clientOut, 3));
        await cat.WaitForExitAsync(Token).WaitAsync(TimeSpan.FromSeconds(10), Token);
    }

    [Fact]
    public async Task A_client_that_never_opens_its_stdout_end_fails_create_within_the_bound()
    {
        SkipUnlessLinux();
        string stdout = Fifo("stdout");
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<FailedPreconditionException>(() => ProcessIo.OpenAsync(
            new StdioPaths(string.Empty, stdout, string.Empty, Terminal: false), Context(TimeSpan.FromMilliseconds(500)), NullLogger.Instance, Token));

        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(5));
        Assert.Contains(stdout, error.Message, StringComparison.Ordinal);
        Assert.Equal(0, OpenDescriptorsOn(stdout));
    }

    [Fact]
    public async Task The_client_sees_EOF_on_its_FIFO_when_the_output_ends_before_anything_is_deleted()
    {
        SkipUnlessLinux();
        string stdout = Fifo("stdout");
        using FileStream clientOut = OpenClientReader(stdout);
        await using ProcessIo io = await ProcessIo.OpenAsync(
            new StdioPaths(string.Empty, stdout, string.Empty, Terminal: false), Context(TimeSpan.FromSeconds(5)), NullLogger.Instance, Token);
        using Process echo = Start("/bin/echo", "last words");
        io.Attach(new StartedProcess(echo.Id, null, echo.StandardOutput.BaseStream, null));

        Assert.Equal("last words\n", await ReadAsync(clientOut, 11));
        int more = await Task.Run(() => clientOut.Read(new byte[16]), Token).WaitAsync(TimeSpan.FromSeconds(10), Token);

        Assert.Equal(0, more);
    }

    [Fact]
    public async Task A_plain_file_path_is_appended_to()
    {
        string file = Path.Combine(_directory, "out.log");
        await File.WriteAllTextAsync(file, "existing\n", Token);
        await using (ProcessIo io = await ProcessIo.OpenAsync(
            new StdioPaths(string.Empty, file, string.Empty, Terminal: false), Context(TimeSpan.FromSeconds(1)), NullLogger.Instance, Token))
        {
            using Process echo = Start("/bin/echo", "appended");
            io.Attach(new StartedProcess(echo.Id, null, echo.StandardOutput.BaseStream, null));
            await io.OutputDrained.WaitAsync(TimeSpan.FromSeconds(10), Token);
        }

        Assert.Equal("existing\nappended\n", await File.ReadAllTextAsync(file, Token));
    }

    [Fact]
    public async Task Dispose_releases_every_descriptor_even_if_the_stdin_writer_never_came()
    {
        SkipUnlessLinux();
        string stdin = Fifo("stdin"), stdout = Fifo("stdout");
        using FileStream clientOut = OpenClientReader(stdout);
        ProcessIo io = await ProcessIo.OpenAsync(
            new StdioPaths(stdin, stdout, string.Empty, Terminal: false), Context(TimeSpan.FromSeconds(5)), NullLogger.Instance, Token);
        using Process cat = StartCat();
        io.Attach(new StartedProcess(cat.Id, cat.StandardInput.BaseStream, cat.StandardOutput.BaseStream, null));

        await io.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10), Token);
        clientOut.Dispose(); // the test's own end of stdout is not the shim's to close

        Assert.Equal(0, OpenDescriptorsOn(stdin));
        Assert.Equal(0, OpenDescriptorsOn(stdout));
        await cat.WaitForExitAsync(Token).WaitAsync(TimeSpan.FromSeconds(10), Token); // stdin was closed: cat ends
    }

    private static IoContext Context(TimeSpan openTimeout) => new("io-test", "test-ns", openTimeout);

    private static void SkipUnlessLinux() => Assert.SkipUnless(OperatingSystem.IsLinux(), "FIFO relays are Linux-only");

    private string Fifo(string name)
    {
        string path = Path.Combine(_directory, name);
        Assert.Equal(0, Native.MkFifo(path, Convert.ToInt32("600", 8)));
        return path;
    }

    // As containerd's clients do: the read end is opened non-blocking before Create.
    private static FileStream OpenClientReader(string path)
    {
        int fd = Native.Open(path, Native.ORdOnly | Native.ONonBlock | Native.OCloExec, 0);
        Assert.True(fd >= 0);
        int flags = Native.Fcntl(fd, Native.FGetFl, 0);
        Native.Fcntl(fd, Native.FSetFl, flags & ~Native.ONonBlock);
        return new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true), FileAccess.Read, 1);
    }

    private static async Task<string> ReadAsync(Stream stream, int count)
    {
        byte[] buffer = new byte[count];
        await Task.Run(() => stream.ReadExactly(buffer), Token).WaitAsync(TimeSpan.FromSeconds(10), Token);
        return Encoding.UTF8.GetString(buffer);
    }

    private static Process StartCat() => Start("/bin/cat");

    private static Process Start(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        return Process.Start(info)!;
    }

    private static int OpenDescriptorsOn(string path) =>
        Directory.EnumerateFiles("/proc/self/fd").Count(fd =>
        {
            try
            {
                return new FileInfo(fd).LinkTarget == path;
            }
            catch (IOException)
            {
                return false;
            }
        });
}
