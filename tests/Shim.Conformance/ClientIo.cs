using System.Runtime.InteropServices;
using System.Text;

namespace PluggableShim.Conformance;

/// <summary>
/// A client's side of a process's IO, as containerd's clients make it: FIFOs for stdin, stdout
/// and stderr, opened (read-write, so opening never blocks) before Create. Output is collected.
/// </summary>
public sealed partial class ClientIo : IDisposable
{
    private readonly string _directory;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly FileStream _stdin;
    private readonly FileStream _stdoutStream;
    private readonly FileStream _stderrStream;

    /// <summary>Makes the FIFOs in a new folder under <paramref name="parent"/>.</summary>
    public ClientIo(string parent)
    {
        _directory = Directory.CreateDirectory(Path.Combine(parent, "io-" + Guid.NewGuid().ToString("N")[..12])).FullName;
        foreach (string name in new[] { "stdin", "stdout", "stderr" })
        {
            MakeFifo(Path.Combine(_directory, name));
        }

        _stdin = Open(Stdin);
        _stdoutStream = Open(Stdout);
        _stderrStream = Open(Stderr);
        Collect(_stdoutStream, _stdout);
        Collect(_stderrStream, _stderr);
    }

    /// <summary>The stdin FIFO's path, for the request.</summary>
    public string Stdin => Path.Combine(_directory, "stdin");

    /// <summary>The stdout FIFO's path.</summary>
    public string Stdout => Path.Combine(_directory, "stdout");

    /// <summary>The stderr FIFO's path.</summary>
    public string Stderr => Path.Combine(_directory, "stderr");

    /// <summary>What reached stdout so far.</summary>
    public string Output => Read(_stdout);

    /// <summary>What reached stderr so far.</summary>
    public string ErrorOutput => Read(_stderr);

    /// <summary>Writes to the process's stdin.</summary>
    public void Write(string text)
    {
        _stdin.Write(Encoding.UTF8.GetBytes(text));
        _stdin.Flush();
    }

    /// <summary>Waits until stdout holds <paramref name="expected"/>.</summary>
    public Task WaitForOutputAsync(string expected, TimeSpan timeout) => WaitForAsync(_stdout, "stdout", expected, timeout);

    /// <summary>Waits until stderr holds <paramref name="expected"/>.</summary>
    public Task WaitForErrorOutputAsync(string expected, TimeSpan timeout) => WaitForAsync(_stderr, "stderr", expected, timeout);

    /// <inheritdoc />
    public void Dispose()
    {
        _stdin.Dispose();
        _stdoutStream.Dispose();
        _stderrStream.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    internal static void MakeFifo(string path)
    {
        if (MkFifo(path, 0x180 /* 0600 */) != 0)
        {
            throw new IOException($"mkfifo {path}: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    internal static FileStream Open(string fifo) =>
        new(fifo, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);

    internal static void Collect(FileStream stream, StringBuilder into) =>
        _ = Task.Factory.StartNew(() =>
        {
            byte[] buffer = new byte[4096];
            try
            {
                int n;
                while ((n = stream.Read(buffer)) > 0)
                {
                    lock (into)
                    {
                        into.Append(Encoding.UTF8.GetString(buffer, 0, n));
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                // Disposed.
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private static string Read(StringBuilder from)
    {
        lock (from)
        {
            return from.ToString();
        }
    }

    private static async Task WaitForAsync(StringBuilder from, string name, string expected, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!Read(from).Contains(expected, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{name} never showed \"{expected}\"; it holds \"{Read(from)}\"");
            }

            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    [LibraryImport("libc", EntryPoint = "mkfifo", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int MkFifo(string path, uint mode);
}
