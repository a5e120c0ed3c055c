using System.Diagnostics;

namespace PluggableShim.Conformance;

/// <summary>What one run of the shim binary (<c>start</c> or <c>delete</c>) printed and returned.</summary>
/// <param name="ExitCode">Its exit status.</param>
/// <param name="Stdout">Its standard output.</param>
/// <param name="Stderr">Its standard error.</param>
public sealed record ShimCommandResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Both streams, as containerd reads them.</summary>
    public string Output => Stdout + Stderr;
}

/// <summary>Runs the shim binary as containerd does: in the bundle, with its flags and environment, until both streams close.</summary>
public static class ShimCommand
{
    /// <summary>Runs <paramref name="shim"/> with <paramref name="arguments"/> in <paramref name="workingDirectory"/>.</summary>
    public static async Task<ShimCommandResult> RunAsync(
        string shim,
        IEnumerable<string> arguments,
        string workingDirectory,
        IReadOnlyDictionary<string, string> environment,
        TimeSpan timeout,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        ArgumentNullException.ThrowIfNull(environment);
        var info = new ProcessStartInfo(shim)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        foreach ((string key, string value) in environment)
        {
            info.Environment[key] = value;
        }

        using Process process = Process.Start(info) ?? throw new InvalidOperationException("cannot run " + shim);
        process.StandardInput.Close(); // no runtime options: an empty Any
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        Task<string> stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            // containerd reads until end of file: a daemon that inherited these streams would hang it, and here too.
            await Task.WhenAll(stdout, stderr).WaitAsync(deadline.Token).ConfigureAwait(false);
            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException(
                $"{Path.GetFileName(shim)} {string.Join(' ', info.ArgumentList)} did not finish (or left its output open) " +
                $"within {timeout.TotalSeconds:0} s");
        }

        return new ShimCommandResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }
}
