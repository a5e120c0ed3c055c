using System.Runtime.InteropServices;
using System.Text;

namespace PluggableShim.EndToEnd.Tests.Support;

/// <summary>
/// The client's side of a process's IO, as containerd's clients make it: three FIFOs, opened
/// before Create (read-write, so opening never blocks, as the fifo package does).
/// </summary>
public sealed partial class ClientFifos : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("psh-fifo-").FullName;
    private readonly StringBuilder _stdout = new();
    private readonly FileStream _stdinStream;
    private readonly FileStream _stdoutStream;
    private readonly FileStream _stderrStream;

    public ClientFifos()
    {
        foreach (string name in new[] { "stdin", "stdout", "stderr" })
        {
            if (MkFifo(Path.Combine(_directory, name), 0x180 /* 0600 */) != 0)
            {
                throw new IOException($"mkfifo {name}: errno {Marshal.GetLastPInvokeError()}");
            }
        }

        _stdinStream = new FileStream(Stdin, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 0);
        _stdoutStream = new FileStream(Stdout, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 0);
        _stderrStream = new FileStream(Stderr, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 0);
        _ = System.Threading.Tasks.Task.Run(ReadStdout);
    }

    public string Stdin => Path.Combine(_directory, "stdin");

    public string Stdout => Path.Combine(_directory, "stdout");

    public string Stderr => Path.Combine(_directory, "stderr");

    public string Output
    {
        get
        {
            lock (_stdout)
            {
                return _stdout.ToString();
            }
        }
    }

    public void Write(string text)
    {
        _stdinStream.Write(Encoding.UTF8.GetBytes(text));
        _stdinStream.Flush();
    }

    public async Task WaitForOutputAsync(string expected, TimeSpan timeout)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (!Output.Contains(expected, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"stdout never showed \"{expected}\"; it holds \"{Output}\"");
            }

            await System.Threading.Tasks.Task.Delay(20);
        }
    }

    public void Dispose()
    {
        _stdinStream.Dispose();
        _stdoutStream.Dispose();
        _stderrStream.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private void ReadStdout()
    {
        byte[] buffer = new byte[4096];
        try
        {
            int n;
            while ((n = _stdoutStream.Read(buffer)) > 0)
            {
                lock (_stdout)
                {
                    _stdout.Append(Encoding.UTF8.GetString(buffer, 0, n));
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // Disposed.
        }
    }

    [LibraryImport("libc", EntryPoint = "mkfifo", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int MkFifo(string path, uint mode);
}
