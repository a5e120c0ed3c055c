using System.Text.Json;
using PluggableShim.EndToEnd.Tests.Support;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;

namespace PluggableShim.EndToEnd.Tests.Fake;

/// <summary>
/// <c>ctr run --log-uri</c> through our shim: a plain path, file:// and binary://. ctr 1.6 sends the
/// URI as both stdout and stderr and opens no FIFO at all, stdin included.
/// </summary>
[Collection(ContainerdCollection.Name)]
public sealed class LogUriTests(ContainerdFixture fixture) : IDisposable
{
    private const string Ns = "e2e-loguri";
    private static readonly string s_image = LocalContainerd.ImageReference;
    private readonly string _directory = Directory.CreateTempSubdirectory("psh-loguri-").FullName;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static string NewId(string stem) => $"{stem}-{Guid.NewGuid().ToString("N")[..8]}";

    [Fact]
    public async Task A_plain_path_receives_stdout_and_stderr_appended()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string log = Path.Combine(_directory, "plain.log");
        await File.WriteAllTextAsync(log, "before\n", Token);
        string id = NewId("plain");

        CommandResult run = await RunAsync(containerd, log, id, "sh", "-c", "echo out-1; echo err-1 >&2; echo out-2");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("", run.Stdout);
        string[] lines = await File.ReadAllLinesAsync(log, Token);
        Assert.Equal("before", lines[0]);
        Assert.Equal(["err-1", "out-1", "out-2"], lines[1..].Order(StringComparer.Ordinal));
        Assert.True(lines.ToList().IndexOf("out-1") < lines.ToList().IndexOf("out-2"));

        // What ctr sent: the path as stdout and stderr, and no stdin.
        RecordedEvent created = await containerd.Events.WaitForAsync(
            e => e.Namespace == Ns && e.Topic == "/tasks/create" && e.ContainerId == id, TimeSpan.FromSeconds(20), Token);
        using JsonDocument io = JsonDocument.Parse(created.Property("io") ?? "{}");
        Assert.Equal(log, io.RootElement.GetProperty("stdout").GetString());
        Assert.Equal(log, io.RootElement.GetProperty("stderr").GetString());
        Assert.False(io.RootElement.TryGetProperty("stdin", out _), "ctr 1.6 sends no stdin with --log-uri");
    }

    [Fact]
    public async Task A_file_uri_creates_its_folders_and_takes_both_streams()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string log = Path.Combine(_directory, "made", "by", "shim", "c.log");

        CommandResult run = await RunAsync(
            containerd, "file://" + log, NewId("file"), "sh", "-c", "echo to-out; echo to-err >&2; exit 5");

        Assert.Equal(5, run.ExitCode);
        Assert.Equal(["to-err", "to-out"], (await File.ReadAllLinesAsync(log, Token)).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Without_a_stdin_FIFO_the_process_reads_EOF_instead_of_hanging()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string log = Path.Combine(_directory, "stdin.log");

        // ctr's own stdin is ignored with --log-uri; cat must see EOF at once and end.
        CommandResult run = await RunAsync(
            containerd, "file://" + log, NewId("stdin"), ["sh", "-c", "cat; echo cat-ended"], stdin: "ignored\n");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("cat-ended\n", await File.ReadAllTextAsync(log, Token));
    }

    [Fact]
    public async Task A_logging_program_gets_the_streams_on_fds_3_and_4_its_arguments_and_environment_and_ends()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string logger = Script("logger.sh", """
            echo $$ > "$D/pid"
            for a in "$@"; do echo "[$a]"; done > "$D/argv"
            env > "$D/env"
            exec 5>&-
            cat <&3 > "$D/stdout" &
            cat <&4 > "$D/stderr" &
            wait
            echo finished > "$D/ended"
            """);
        string id = NewId("binary");

        CommandResult run = await RunAsync(
            containerd, $"binary://{logger}?--mode=tail&label=a+b&--debug", id,
            "sh", "-c", "echo hello-out; echo hello-err >&2");

        Assert.Equal(0, run.ExitCode);
        Assert.Equal("", run.Stdout);
        // The exit is reported only after the logger finished, so everything is there already.
        Assert.Equal("hello-out\n", await File.ReadAllTextAsync(Path.Combine(_directory, "stdout"), Token));
        Assert.Equal("hello-err\n", await File.ReadAllTextAsync(Path.Combine(_directory, "stderr"), Token));
        Assert.Equal("finished\n", await File.ReadAllTextAsync(Path.Combine(_directory, "ended"), Token));
        Assert.Equal(
            ["[--mode]", "[tail]", "[label]", "[a b]", "[--debug]", "[]"],
            await File.ReadAllLinesAsync(Path.Combine(_directory, "argv"), Token));
        string[] env = await File.ReadAllLinesAsync(Path.Combine(_directory, "env"), Token);
        Assert.Contains($"CONTAINER_ID={id}", env);
        Assert.Contains($"CONTAINER_NAMESPACE={Ns}", env);
        int pid = ReadPid();
        Assert.False(Posix.IsAlive(pid), "the logging program outlived the task");
        Assert.False(Directory.Exists($"/proc/{pid}"), "the logging program was left a zombie");
    }

    [Fact]
    public async Task The_logging_program_is_not_in_containerds_session()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string logger = Script("session.sh", """
            echo $$ > "$D/pid"
            cut -d' ' -f6 /proc/$$/stat > "$D/session"
            exec 5>&-
            cat <&3 > /dev/null
            """);

        (await RunAsync(containerd, "binary://" + logger, NewId("session"), "true")).EnsureSuccess();

        int session = int.Parse((await File.ReadAllTextAsync(Path.Combine(_directory, "session"), Token)).Trim(),
            System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(ReadPid(), session); // a session of its own: it leads it
    }

    [Fact]
    public async Task A_logging_program_that_exits_early_fails_run_and_leaves_nothing_running()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        // A duration no other test (in any test process running meanwhile) uses.
        int seconds = Random.Shared.Next(40000, 49999);
        string logger = Script("early.sh", $$"""
            echo $$ > "$D/pid"
            sleep {{seconds}} &
            exit 9
            """);
        string id = NewId("early");

        CommandResult run = await RunAsync(containerd, "binary://" + logger, id, "echo", "never");

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains($"logging program {logger} exited with status 9 before it was ready", run.Stderr, StringComparison.Ordinal);
        Assert.False(Posix.IsAlive(ReadPid()));
        await Poll.UntilAsync(() => Posix.ProcessesMatching($"sleep {seconds}").Count == 0, "the logger's child still runs");
        await Poll.UntilAsync(() => Posix.ProcessesMatching($"-id {id} ").Count == 0, "shim process still running");
    }

    [Theory]
    [InlineData("syslog:///dev/log", "unsupported scheme \"syslog\"")]
    [InlineData("relative/out.log", "is a relative path")]
    [InlineData("binary:///no/such/logger", "logging program /no/such/logger does not exist")]
    public async Task A_log_uri_the_shim_cannot_use_fails_run_with_invalid_argument(string uri, string expected)
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);

        CommandResult run = await RunAsync(containerd, uri, NewId("bad"), "echo", "never");

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains(expected, run.Stderr, StringComparison.Ordinal);
        Assert.Contains("invalid argument", run.Stderr, StringComparison.Ordinal);
    }

    private Task<CommandResult> RunAsync(LocalContainerd containerd, string logUri, string id, params string[] command) =>
        RunAsync(containerd, logUri, id, command, stdin: null);

    private static async Task<CommandResult> RunAsync(
        LocalContainerd containerd, string logUri, string id, string[] command, string? stdin) =>
        await containerd.CtrAsync(
            Ns,
            ["run", "--rm", "--runtime", "io.containerd.fake.v1", "--log-uri", logUri, s_image, id, .. command],
            stdin: stdin,
            cancellationToken: Token);

    // Written by a child process, not by us: a writable descriptor of ours could be inherited by a
    // process another test forks at that moment, and exec would then fail with ETXTBSY.
    private string Script(string name, string body)
    {
        string path = Path.Combine(_directory, name);
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
}
