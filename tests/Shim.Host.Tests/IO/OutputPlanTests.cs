using Microsoft.Extensions.Logging.Abstractions;
using PluggableShim.Abstractions;
using PluggableShim.Host.IO;
using PluggableShim.Host.IO.Internal;

namespace PluggableShim.Host.Tests.IO;

/// <summary>How the Task API's stdout/stderr strings are read: paths, file://, binary://, and what is refused.</summary>
public sealed class OutputPlanTests
{
    [Fact]
    public void An_absolute_path_is_a_path_target_for_each_stream()
    {
        OutputPlan plan = OutputPlan.Parse("/run/x/stdout", "/run/x/stderr", terminal: false);

        Assert.Equal(new OutputTarget.PathTarget("/run/x/stdout"), plan.Stdout);
        Assert.Equal(new OutputTarget.PathTarget("/run/x/stderr"), plan.Stderr);
        Assert.False(plan.Shared);
    }

    [Fact]
    public void Empty_strings_mean_no_output()
    {
        OutputPlan plan = OutputPlan.Parse("", "", terminal: false);

        Assert.Null(plan.Stdout);
        Assert.Null(plan.Stderr);
    }

    [Theory]
    [InlineData("file:///var/log/c.log", "file:///var/log/c.log")]
    [InlineData("file:///var/log/c.log", "")]
    [InlineData("FILE:///var/log/c.log", "FILE:///var/log/c.log")]
    public void A_file_uri_takes_both_streams(string stdout, string stderr)
    {
        OutputPlan plan = OutputPlan.Parse(stdout, stderr, terminal: false);

        Assert.Equal(new OutputTarget.FileTarget("/var/log/c.log"), plan.Stdout);
        Assert.True(plan.Shared);
    }

    [Fact]
    public void A_file_uri_path_is_percent_decoded()
    {
        OutputPlan plan = OutputPlan.Parse("file:///tmp/a%20b/c%23d.log", "", terminal: false);

        Assert.Equal(new OutputTarget.FileTarget("/tmp/a b/c#d.log"), plan.Stdout);
    }

    [Fact]
    public void Binary_query_pairs_become_key_then_value_arguments_in_written_order()
    {
        const string uri = "binary:///usr/bin/logger?--driver=journald&tag=two+words&--verbose&path=%2Fvar%2Flog";

        OutputPlan plan = OutputPlan.Parse(uri, uri, terminal: false);

        var binary = Assert.IsType<OutputTarget.BinaryTarget>(plan.Stdout);
        Assert.Equal("/usr/bin/logger", binary.Program);
        Assert.Equal(["--driver", "journald", "tag", "two words", "--verbose", "", "path", "/var/log"], binary.Arguments);
        Assert.True(plan.Shared);
    }

    [Fact]
    public void Binary_without_a_query_has_no_arguments()
    {
        var binary = Assert.IsType<OutputTarget.BinaryTarget>(OutputPlan.Parse("binary:///opt/log", "", false).Stdout);

        Assert.Empty(binary.Arguments);
    }

    [Fact]
    public void Terminal_mode_drops_stderr_even_with_a_uri()
    {
        OutputPlan plan = OutputPlan.Parse("file:///tmp/t.log", "file:///tmp/t.log", terminal: true);

        Assert.NotNull(plan.Stdout);
        Assert.Null(plan.Stderr);
    }

    [Theory]
    [InlineData("out.log", "relative path")]
    [InlineData("./out.log", "relative path")]
    [InlineData("syslog:///dev/log", "unsupported scheme \"syslog\"")]
    [InlineData("fifo:///run/x", "unsupported scheme \"fifo\"")]
    [InlineData("file:/tmp/x", "three slashes")]
    [InlineData("file://tmp/x", "names a host \"tmp\"")]
    [InlineData("binary://localhost/bin/x", "names a host")]
    [InlineData("file://", "has no path")]
    [InlineData("binary:///", "has no path")]
    [InlineData("file:///tmp/x?rotate=1", "takes no query")]
    [InlineData("file:///tmp/x#frag", "fragment")]
    [InlineData("file:///tmp/%zz", "bad percent escape at \"%zz\"")]
    [InlineData("file:///tmp/%4", "bad percent escape")]
    [InlineData("file:///tmp/%ff", "invalid UTF-8")]
    [InlineData("file:///tmp/a%00b", "NUL")]
    [InlineData("binary:///bin/x?a=1;b=2", "';' is not a query separator")]
    [InlineData("binary:///bin/x?a=1&a=2", "repeats the query key \"a\"")]
    [InlineData("binary:///bin/x?=v", "empty key")]
    public void A_bad_stdout_is_refused_with_a_message_that_says_why(string stdout, string expected)
    {
        var error = Assert.Throws<InvalidArgumentException>(() => OutputPlan.Parse(stdout, "", terminal: false));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Contains(stdout.Length > 30 ? stdout[..30] : stdout, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_stderr_that_differs_from_a_binary_stdout_is_refused()
    {
        var error = Assert.Throws<InvalidArgumentException>(
            () => OutputPlan.Parse("binary:///bin/logger", "/run/fifo/stderr", terminal: false));

        Assert.Contains("must be empty or the same URI", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_uri_as_stderr_alone_is_refused()
    {
        var error = Assert.Throws<InvalidArgumentException>(
            () => OutputPlan.Parse("/run/fifo/stdout", "file:///tmp/err.log", terminal: false));

        Assert.Contains("must be given as stdout", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_relative_stderr_is_refused()
    {
        var error = Assert.Throws<InvalidArgumentException>(() => OutputPlan.Parse("", "err.log", terminal: false));

        Assert.StartsWith("stderr \"err.log\"", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("", "syslog:///x", "")]
    [InlineData("", "file:///tmp/a b?x", "")]
    [InlineData("relative-stdin", "", "")]
    [InlineData("file:///tmp/in", "", "")]
    public async Task Open_refuses_bad_strings_with_InvalidArgument_before_opening_anything(string stdin, string stdout, string stderr)
    {
        await Assert.ThrowsAsync<InvalidArgumentException>(() => ProcessIo.OpenAsync(
            new StdioPaths(stdin, stdout, stderr, Terminal: false),
            new IoContext("c", "ns", TimeSpan.FromSeconds(1)),
            NullLogger.Instance,
            TestContext.Current.CancellationToken));
    }
}
