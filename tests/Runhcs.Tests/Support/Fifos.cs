using System.Runtime.InteropServices;
using System.Text;

namespace PluggableShim.Runhcs.Tests.Support;

/// <summary>A client's stdio FIFOs, opened read-write before Create as containerd's clients do; stdout is collected.</summary>
public sealed class Fifos : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("rh-fifo-").FullName;
    private readonly StringBuilder _stdout = new();
    private readonly FileStream[] _streams;

    public Fifos()
    {
        foreach (string name in new[] { "stdin", "stdout", "stderr" })
        {
            if (RunhcsShim.MkFifo(Path.Combine(_directory, name), 0x180) != 0)
            {
                throw new IOException($"mkfifo {name}: errno {Marshal.GetLastPInvokeError()}");
            }
        }

        _streams = [.. new[] { Stdin, Stdout, Stderr }.Select(p => new FileStream(p, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 0))];
        _ = Task.Run(ReadStdout);
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
        _streams[0].Write(Encoding.UTF8.GetBytes(text));
        _streams[0].Flush();
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

            await Task.Delay(20);
        }
    }

    public void Dispose()
    {
        foreach (FileStream stream in _streams)
        {
            stream.Dispose();
        }

        Directory.Delete(_directory, recursive: true);
    }

    private void ReadStdout()
    {
        byte[] buffer = new byte[4096];
        try
        {
            int n;
            while ((n = _streams[1].Read(buffer)) > 0)
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
}
