namespace PluggableShim.Plugins.Fake.Tests.Support;

internal static class Processes
{
    /// <summary>True while <paramref name="pid"/> exists and is not a zombie.</summary>
    public static bool IsAlive(int pid)
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

    public static async Task UntilAsync(Func<bool> condition, string failure, double seconds = 10)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>Reads everything a started process writes to a stream, in the background (so it never blocks on a full pipe).</summary>
    public static Task<string> DrainAsync(Stream? stream) =>
        stream is null ? Task.FromResult("") : new StreamReader(stream).ReadToEndAsync();
}
