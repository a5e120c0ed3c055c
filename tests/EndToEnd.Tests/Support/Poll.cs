namespace PluggableShim.EndToEnd.Tests.Support;

/// <summary>Waits for something the shim does asynchronously (exit, cleanup), with a bound.</summary>
public static class Poll
{
    public static async Task UntilAsync(Func<bool> condition, string failure, double seconds = 15)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }
}
