using System.Diagnostics;
using System.Text;

namespace PluggableShim.Testing;

/// <summary>What a finished command printed and returned.</summary>
public sealed record CommandResult(string Command, int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Throws with the whole output unless the command exited 0.</summary>
    public CommandResult EnsureSuccess()
    {
        if (ExitCode != 0)
        {
            throw new InvalidOperationException($"`{Command}` exited {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}");
        }

        return this;
    }
}

/// <summary>Runs a command to completion with a deadline; on timeout the process tree is killed.</summary>
public static class ProcessRunner
{
    public static async Task<CommandResult> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        TimeSpan timeout,
        string? stdin = null,
        IReadOnlyDictionary<string, string>? environment = null,
        CancellationToken cancellationToken = default)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        string command = fileName + " " + string.Join(' ', info.ArgumentList);
        using Process process = Process.Start(info) ?? throw new InvalidOperationException("cannot start " + fileName);
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        Task readOut = Task.Run(() => Copy(process.StandardOutput, stdout), CancellationToken.None);
        Task readErr = Task.Run(() => Copy(process.StandardError, stderr), CancellationToken.None);
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin).ConfigureAwait(false);
        }

        process.StandardInput.Close();

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            await Task.WhenAll(readOut, readErr).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None)
                .ConfigureAwait(false);
            throw new TimeoutException(
                $"`{command}` did not finish within {timeout.TotalSeconds:0} s\nstdout: {stdout}\nstderr: {stderr}");
        }

        // A grandchild holding the pipes open must not hang the test past the deadline.
        await Task.WhenAll(readOut, readErr).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None)
            .ConfigureAwait(false);
        return new CommandResult(command, process.ExitCode, stdout.ToString(), stderr.ToString());
    }

    private static void Copy(StreamReader reader, StringBuilder into)
    {
        char[] buffer = new char[4096];
        int n;
        while ((n = reader.Read(buffer, 0, buffer.Length)) > 0)
        {
            lock (into)
            {
                into.Append(buffer, 0, n);
            }
        }
    }
}
