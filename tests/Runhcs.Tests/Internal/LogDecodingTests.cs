using System.Text;
using Microsoft.Extensions.Logging;
using PluggableShim.Plugins.Runhcs.Internal;
using PluggableShim.Runhcs.Tests.Support;

namespace PluggableShim.Runhcs.Tests.Internal;

public sealed class LogDecodingTests
{
    [Theory]
    [InlineData("trace", LogLevel.Trace)]
    [InlineData("debug", LogLevel.Debug)]
    [InlineData("info", LogLevel.Information)]
    [InlineData("warning", LogLevel.Warning)]
    [InlineData("WARN", LogLevel.Warning)]
    [InlineData("error", LogLevel.Error)]
    [InlineData("fatal", LogLevel.Critical)]
    [InlineData("panic", LogLevel.Critical)]
    public void Logrus_levels_map_to_the_matching_level(string level, LogLevel expected)
    {
        RunhcsLogEntry entry = RunhcsLogEntry.Decode($$"""{"level":"{{level}}","msg":"m","time":"2024-05-01T10:00:00.5+02:00"}""")!;

        Assert.Equal(expected, entry.Level);
        Assert.Equal("m", entry.Message);
        Assert.Equal(new DateTimeOffset(2024, 5, 1, 8, 0, 0, 500, TimeSpan.Zero), entry.Time);
    }

    [Fact]
    public void Other_fields_are_kept_with_their_values()
    {
        RunhcsLogEntry entry = RunhcsLogEntry.Decode(
            """{"level":"info","msg":"created","cid":"c1","pid":42,"nested":{"a":[1,2]},"ok":true,"none":null}""")!;

        var fields = entry.Fields.ToDictionary(f => f.Key, f => f.Value);
        Assert.Equal("c1", fields["cid"]);
        Assert.Equal("42", fields["pid"]);
        Assert.Equal("""{"a":[1,2]}""", fields["nested"]);
        Assert.Equal("true", fields["ok"]);
        Assert.Equal(string.Empty, fields["none"]);
    }

    [Theory]
    [InlineData("""{"msg":"no level"}""", LogLevel.Information, "no level")]
    [InlineData("""{"level":"loud","msg":"odd level"}""", LogLevel.Information, "odd level")]
    [InlineData("""{"level":3,"msg":{"x":1}}""", LogLevel.Information, """{"x":1}""")]
    [InlineData("""{"level":"error"}""", LogLevel.Error, "")]
    [InlineData("""{}""", LogLevel.Information, "")]
    public void Missing_or_odd_fields_still_give_an_entry(string line, LogLevel level, string message)
    {
        RunhcsLogEntry entry = RunhcsLogEntry.Decode(line)!;

        Assert.Equal(level, entry.Level);
        Assert.Equal(message, entry.Message);
    }

    [Fact]
    public void An_unknown_level_and_an_unparseable_time_are_kept_as_fields()
    {
        RunhcsLogEntry entry = RunhcsLogEntry.Decode("""{"level":"loud","time":"yesterday","msg":"x"}""")!;

        var fields = entry.Fields.ToDictionary(f => f.Key, f => f.Value);
        Assert.Equal("loud", fields["runhcsLevel"]);
        Assert.Equal("yesterday", fields["runhcsTime"]);
        Assert.Null(entry.Time);
    }

    [Theory]
    [InlineData("panic: runtime error: index out of range", "text")]
    [InlineData("[1,2,3]", "json-array")]
    [InlineData("\"just a string\"", "json-string")]
    [InlineData("{\"level\":\"info\",\"msg\":\"cut", "text")]
    public void Lines_that_are_not_json_objects_are_kept_as_text(string line, string format)
    {
        RunhcsLogEntry entry = RunhcsLogEntry.Decode(line)!;

        Assert.Equal(LogLevel.Information, entry.Level);
        Assert.Equal(line, entry.Message);
        Assert.Contains(new KeyValuePair<string, object?>("format", format), entry.Fields);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("\r")]
    public void Blank_lines_are_skipped(string line) => Assert.Null(RunhcsLogEntry.Decode(line));

    [Fact]
    public void Huge_values_and_too_many_fields_are_bounded()
    {
        string many = string.Join(',', Enumerable.Range(0, 100).Select(i => $"\"f{i}\":{i}"));
        RunhcsLogEntry entry = RunhcsLogEntry.Decode($$"""{"msg":"{{new string('x', 100_000)}}",{{many}}}""")!;

        Assert.True(entry.Message.Length < 10_000);
        Assert.Equal(RunhcsLogEntry.MaxFields + 1, entry.Fields.Count);
        Assert.Contains(new KeyValuePair<string, object?>("droppedFields", 100 - RunhcsLogEntry.MaxFields), entry.Fields);
    }

    [Fact]
    public async Task A_partial_entry_at_the_end_of_the_stream_is_still_delivered_and_marked()
    {
        byte[] bytes = Encoding.UTF8.GetBytes("{\"level\":\"info\",\"msg\":\"one\"}\r\n{\"level\":\"error\",\"msg\":\"tw");
        var lines = new List<LogLineReader.Line>();
        await foreach (LogLineReader.Line line in LogLineReader.ReadAsync(new MemoryStream(bytes), TestContext.Current.CancellationToken))
        {
            lines.Add(line);
        }

        Assert.Equal(2, lines.Count);
        Assert.Equal("{\"level\":\"info\",\"msg\":\"one\"}", lines[0].Text);
        Assert.False(lines[0].Partial);
        Assert.True(lines[1].Partial);
        Assert.Equal("{\"level\":\"error\",\"msg\":\"tw", lines[1].Text);
    }

    [Fact]
    public void An_overlong_line_is_cut_and_the_next_line_is_intact()
    {
        byte[] bytes = Encoding.UTF8.GetBytes(new string('a', LogLineReader.MaxLineBytes * 2) + "\nnext\n");

        List<LogLineReader.Line> lines = LogLineReader.Split(bytes);

        Assert.Equal(2, lines.Count);
        Assert.True(lines[0].Truncated);
        Assert.Equal(LogLineReader.MaxLineBytes, lines[0].Text.Length);
        Assert.Equal(new LogLineReader.Line("next", false, false), lines[1]);
    }

    [Fact]
    public void Invalid_utf8_is_replaced_not_fatal()
    {
        List<LogLineReader.Line> lines = LogLineReader.Split([0x7B, 0xFF, 0xFE, 0x7D, 0x0A]);

        RunhcsLogEntry? entry = RunhcsLogEntry.Decode(Assert.Single(lines).Text);
        Assert.NotNull(entry);
    }

    [Fact]
    public void Forwarding_emits_at_the_entry_level_with_its_fields_and_time_and_survives_fatal()
    {
        var logger = new RecordingLogger();

        foreach (string text in new[]
        {
            """{"level":"fatal","msg":"the end","time":"2024-05-01T10:00:00Z","vm":"uvm1"}""",
            """{"level":"panic","msg":"really"}""",
            "garbage",
            """{"level":"debug","msg":"below the minimum"}""",
        })
        {
            LogForwarder.Forward(logger, LogLevel.Information, "shim", "c1", new LogLineReader.Line(text, false, text == "garbage"));
        }

        Assert.Equal(3, logger.Entries.Count);
        RecordingLogger.Entry fatal = logger.Entries[0];
        Assert.Equal(LogLevel.Critical, fatal.Level);
        Assert.Equal(3000, fatal.EventId.Id);
        Assert.Equal("runhcs shim c1: the end", fatal.Message);
        Assert.Equal("uvm1", fatal.Fields["vm"]);
        Assert.Equal("2024-05-01T10:00:00.0000000+00:00", fatal.Fields["runhcsTime"]);
        Assert.Equal(LogLevel.Critical, logger.Entries[1].Level);
        Assert.Equal("True", logger.Entries[2].Fields["partial"]);
    }
}
