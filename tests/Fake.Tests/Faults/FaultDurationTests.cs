using PluggableShim.Plugins.Fake.Internal.Faults;

namespace PluggableShim.Plugins.Fake.Tests.Faults;

public sealed class FaultDurationTests
{
    [Theory]
    [InlineData("0s", 0)]
    [InlineData("250ms", 250)]
    [InlineData("1.5s", 1500)]
    [InlineData("2m", 120_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("1m30s", 90_000)]
    [InlineData(" 3s ", 3000)]
    public void Go_style_durations_are_read(string text, double milliseconds)
    {
        Assert.True(FaultDuration.TryParse(text, out TimeSpan duration, out string? error), error);
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), duration);
    }

    [Theory]
    [InlineData("")]
    [InlineData("10")]
    [InlineData("s")]
    [InlineData("1.2.3s")]
    [InlineData("-1s")]
    [InlineData("1S")]
    [InlineData("1h1ms")]
    public void Anything_else_is_refused_with_a_reason(string text)
    {
        Assert.False(FaultDuration.TryParse(text, out _, out string? error));
        Assert.False(string.IsNullOrEmpty(error));
    }
}
