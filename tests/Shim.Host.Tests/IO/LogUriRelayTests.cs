using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using PluggableShim.Abstractions;
using PluggableShim.Host.IO;

namespace PluggableShim.Host.Tests.IO;

/// <summary>
/// file:// targets, shared plain files and binary:// logging programs, with real processes:
/// the loggers are shell scripts that record what they were given.
/// </summary>
public sealed class LogUriRelayTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("shim-logio-").FullName;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task A_file_uri_appends_both_streams_and_creates_missing_folders()
    {
        SkipUnlessLinux();
        string file = Path.Combine(_directory, "new", "folder", "c.log");
        string uri = "file://" + file;

        await using (ProcessIo io = await OpenAsync(uri, uri))
        {
            await RunAsync(io, "echo out; echo err >&2");
        }

        await using (ProcessIo again = await OpenAsync(uri, uri))
        {
            await RunAsync(again, "echo second");
        }

        string[] lines = await File.ReadAllLinesAsync(file, Token);
        Assert.Equal(["err", "out", "second"], lines.Take(2).Order(StringComparer.Ordinal).Append(lines[2]));
    }

    [Fact]
    public async Task One_plain_file_as_stdout_and_stderr_keeps_both_streams()
    {
        // What `ctr run --log-uri /path` sends. Two positioned writers used to overwrite each other.
        SkipUnlessLinux();
        string file = Path.Combine(_directory, "both.log");

        await using (ProcessIo io = await OpenAsync(file, file))
        {
            await RunAsync(io, "echo out-line; echo err-line >&2; echo out-2");
        }

        string text = await File.ReadAllTextAsync(file, Token);
        Assert.Equal(3, text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("out-line\n", text, StringComparison.Ordinal);
        Assert.Contains("err-line\n", text, StringComparison.Ordinal);
        Assert.Contains("out-2\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_logging_program_gets_stdout_on_3_stderr_on_4_its_arguments_and_environment_and_ends_at_EOF()
    {
        SkipUnlessLinux();
        string logger = Script("logger", """
            echo $$ > "$D/pid"
            for a in "$@"; do echo "[$a]"; done > "$D/argv"
            env > "$D/env"
            exec 5>&-
            cat <&3 > "$D/out" &
            cat <&4 > "$D/err" &
            wait
            echo clean > "$D/ended"
            """);
        string uri = $"binary://{logger}?--tag=a+b&--flag";

        ProcessIo io = await OpenAsync(uri, uri);
        int pid = ReadPid();
        Assert.True(IsAlive(pid), "the logger must run once Create returned");
        await RunAsync(io, "echo to-stdout; echo to-stderr >&2");

        // OutputDrained includes the logger's exit: it saw EOF on 3 and 4 and finished by itself.
        Assert.Equal("clean\n", await File.ReadAllTextAsync(Path.Combine(_directory, "ended"), Token));
        Assert.Equal("to-stdout\n", await File.ReadAllTextAsync(Path.Combine(_directory, "out"), Token));
        Assert.Equal("to-stderr\n", await File.ReadAllTextAsync(Path.Combine(_directory, "err"), Token));
        Assert.Equal(["[--tag]", "[a b]", "[--flag]", "[]"], await File.ReadAllLinesAsync(Path.Combine(_directory, "argv"), Token));
        string[] env = await File.ReadAllLinesAsync(Path.Combine(_directory, "env"), Token);
        Assert.Contains("CONTAINER_ID=io-test", env);
        Assert.Contains("CONTAINER_NAMESPACE=test-ns", env);
        Assert.DoesNotContain(env, e => e.StartsWith("HOME=", StringComparison.Ordinal));
        Assert.False(Exists(pid), "the logger must be reaped, not left a zombie");
        await io.DisposeAsync();
    }

    [Fact]
    public async Task A_byte_on_fd_5_signals_ready_even_while_a_helper_keeps_fd_5_open()
    {
        SkipUnlessLinux();
        string logger = Script("byte", """
            echo $$ > "$D/pid"
            sleep 30 &
            printf r >&5
            cat <&3 > "$D/out"
            """);

        var clock = Stopwatch.StartNew();
        await using ProcessIo io = await OpenAsync("binary://" + logger, "", openTimeout: TimeSpan.FromSeconds(5));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"ready took {clock.Elapsed}");

        await RunAsync(io, "echo hi");
        Assert.Equal("hi\n", await File.ReadAllTextAsync(Path.Combine(_directory, "out"), Token));
        await AssertGoneAsync(ReadPid()); // the leftover sleep went with its group
    }

    [Fact]
    public async Task A_logger_that_never_signals_ready_fails_open_within_the_bound_and_leaves_nothing()
    {
        SkipUnlessLinux();
        string logger = Script("never", """
            echo $$ > "$D/pid"
            readlink /proc/$$/fd/3 > "$D/pipe"
            exec sleep 600
            """);
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<FailedPreconditionException>(
            () => OpenAsync("binary://" + logger, "", openTimeout: TimeSpan.FromMilliseconds(700)));

        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(600), TimeSpan.FromSeconds(5));
        Assert.Contains("did not signal readiness within 0.7 s", error.Message, StringComparison.Ordinal);
        Assert.Contains(logger, error.Message, StringComparison.Ordinal);
        await AssertGoneAsync(ReadPid());
        Assert.Equal(0, OurDescriptorsOn(File.ReadAllText(Path.Combine(_directory, "pipe")).Trim()));
    }

    [Fact]
    public async Task A_logger_that_exits_early_fails_open_with_its_status()
    {
        SkipUnlessLinux();
        string logger = Script("early", """
            echo $$ > "$D/pid"
            readlink /proc/$$/fd/4 > "$D/pipe"
            exit 3
            """);

        var error = await Assert.ThrowsAsync<FailedPreconditionException>(() => OpenAsync("binary://" + logger, ""));

        Assert.Contains("exited with status 3 before it was ready", error.Message, StringComparison.Ordinal);
        await AssertGoneAsync(ReadPid());
        Assert.Equal(0, OurDescriptorsOn(File.ReadAllText(Path.Combine(_directory, "pipe")).Trim()));
    }

    [Fact]
    public async Task A_logger_that_dies_while_a_child_holds_fd_5_fails_open_and_the_child_is_killed()
    {
        SkipUnlessLinux();
        string logger = Script("orphaning", """
            echo $$ > "$D/pid"
            sleep 600 &
            echo $! > "$D/child"
            exit 4
            """);

        var error = await Assert.ThrowsAsync<FailedPreconditionException>(
            () => OpenAsync("binary://" + logger, "", openTimeout: TimeSpan.FromSeconds(5)));

        Assert.True(error.Message.Contains("exited with status 4", StringComparison.Ordinal), error.Message);
        await AssertGoneAsync(ReadPid());
        int child = int.Parse(File.ReadAllText(Path.Combine(_directory, "child")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        await Poll.UntilAsync(() => !IsAlive(child), "the logger's child still runs");
    }

    [Fact]
    public async Task A_logger_that_ignores_EOF_and_SIGTERM_is_killed_within_the_bounds()
    {
        SkipUnlessLinux();
        string logger = Script("stubborn", """
            echo $$ > "$D/pid"
            trap '' TERM
            exec 5>&-
            cat <&3 > /dev/null
            while :; do sleep 1; done
            """);
        var context = new IoContext("io-test", "test-ns", TimeSpan.FromSeconds(5))
        {
            LoggerExitGrace = TimeSpan.FromMilliseconds(300),
            LoggerStopTimeout = TimeSpan.FromMilliseconds(300),
        };
        await using ProcessIo io = await ProcessIo.OpenAsync(
            new StdioPaths("", "binary://" + logger, "", Terminal: false), context, NullLogger.Instance, Token);
        int pid = ReadPid();
        var clock = Stopwatch.StartNew();

        await RunAsync(io, "echo x");

        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(550), TimeSpan.FromSeconds(5));
        await AssertGoneAsync(pid);
    }

    [Fact]
    public async Task Disposing_before_the_process_started_stops_the_logger()
    {
        SkipUnlessLinux();
        string logger = Script("unused", """
            echo $$ > "$D/pid"
            exec 5>&-
            trap '' TERM
            cat <&3 > /dev/null
            sleep 600
            """);
        ProcessIo io = await OpenAsync("binary://" + logger, "");
        int pid = ReadPid();

        // Delete skips the exit grace: SIGTERM (ignored here), then SIGKILL, each bounded.
        var clock = Stopwatch.StartNew();
        await io.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10), Token);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2.5 + 1), $"dispose took {clock.Elapsed}");
        await AssertGoneAsync(pid);
    }

    [Fact]
    public async Task A_logging_program_that_cannot_be_executed_fails_open()
    {
        SkipUnlessLinux();
        string notExecutable = Path.Combine(_directory, "plain.txt");
        await File.WriteAllTextAsync(notExecutable, "not a program", Token);

        var error = await Assert.ThrowsAsync<FailedPreconditionException>(() => OpenAsync("binary://" + notExecutable, ""));

        Assert.Contains("cannot be started", error.Message, StringComparison.Ordinal);
    }

    private static void SkipUnlessLinux() => Assert.SkipUnless(OperatingSystem.IsLinux(), "log URIs are Linux-only here");

    private async Task<ProcessIo> OpenAsync(string stdout, string stderr, TimeSpan? openTimeout = null) =>
        await ProcessIo.OpenAsync(
            new StdioPaths("", stdout, stderr, Terminal: false),
            new IoContext("io-test", "test-ns", openTimeout ?? TimeSpan.FromSeconds(5)),
            NullLogger.Instance,
            Token);

    private static async Task RunAsync(ProcessIo io, string command)
    {
        var info = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(command);
        using Process process = Process.Start(info)!;
        io.Attach(new StartedProcess(process.Id, null, process.StandardOutput.BaseStream, process.StandardError.BaseStream));
        await process.WaitForExitAsync(Token).WaitAsync(TimeSpan.FromSeconds(10), Token);
        await io.OutputDrained.WaitAsync(TimeSpan.FromSeconds(10), Token);
    }

    // Written by a child process, not by us: a writable descriptor of ours could be inherited by a
    // process another test forks at that moment, and exec would then fail with ETXTBSY.
    private string Script(string name, string body)
    {
        string path = Path.Combine(_directory, name + ".sh");
        var info = new System.Diagnostics.ProcessStartInfo("/bin/sh") { RedirectStandardInput = true };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("cat > \"$0\" && chmod 700 \"$0\"");
        info.ArgumentList.Add(path);
        using (var writer = System.Diagnostics.Process.Start(info)!)
        {
            writer.StandardInput.Write($"#!/bin/sh\nD='{_directory}'\n{body}\n");
            writer.StandardInput.Close();
            writer.WaitForExit(10_000);
            Assert.Equal(0, writer.ExitCode);
        }

        return path;
    }

    private int ReadPid() =>
        int.Parse(File.ReadAllText(Path.Combine(_directory, "pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);

    private static bool Exists(int pid) => Directory.Exists($"/proc/{pid}");

    // Alive and not a zombie.
    private static bool IsAlive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    // The logger itself is reaped by the time the call returns; helpers it left are killed then,
    // and reaped a moment later by whoever adopted them.
    private static async Task AssertGoneAsync(int pid)
    {
        Assert.False(Exists(pid), $"logger {pid} still exists (running or unreaped)");
        await Poll.UntilAsync(() => Posix.GroupMembers(pid).All(p => !IsAlive(p)), $"processes of logger {pid}'s group still run");
    }

    private static int OurDescriptorsOn(string target) =>
        Directory.EnumerateFiles("/proc/self/fd").Count(fd =>
        {
            try
            {
                return new FileInfo(fd).LinkTarget == target;
            }
            catch (IOException)
            {
                return false;
            }
        });

    private static class Posix
    {
        // Processes whose process group is the given (logger's) pid.
        public static int[] GroupMembers(int group) =>
        [
            .. Directory.EnumerateDirectories("/proc")
                .Select(d => int.TryParse(Path.GetFileName(d), out int p) ? p : 0)
                .Where(p => p > 0 && GroupOf(p) == group),
        ];

        private static int GroupOf(int pid)
        {
            try
            {
                string stat = File.ReadAllText($"/proc/{pid}/stat");
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                return int.Parse(fields[2], System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (IOException)
            {
                return 0;
            }
        }
    }

    private static class Poll
    {
        public static async Task UntilAsync(Func<bool> condition, string failure)
        {
            var clock = Stopwatch.StartNew();
            while (!condition())
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), failure);
                await Task.Delay(20, Token);
            }
        }
    }
}
