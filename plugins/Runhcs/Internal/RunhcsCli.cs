using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Logging;

namespace PluggableShim.Plugins.Runhcs.Internal;

/// <summary>
/// Runs runhcs for one container: the global flags (<c>--log</c>, <c>--log-format json</c>,
/// <c>--owner</c>, <c>--root</c>, <c>--debug</c>), a bound on every call, and errors turned into
/// status codes with runhcs's own message.
/// </summary>
/// <remarks>
/// Each call logs to a file of its own in the bundle, read back when the call ends: runhcs
/// writes its error there too (besides stderr), and for create and exec stderr is the
/// container's, not ours to read. The entries are then re-emitted through the shim's log.
/// </remarks>
internal sealed class RunhcsCli(
    string binary,
    RunhcsSettings settings,
    RunhcsOptions options,
    string bundle,
    string containerId,
    bool debug,
    ILogger logger)
{
    private static readonly TimeSpan OutputDrainTimeout = TimeSpan.FromSeconds(2);

    public string ContainerId => containerId;

    public RunhcsSettings Settings => settings;

    private LogLevel Minimum => LevelFromOptions(options.LogLevel, debug);

    /// <summary>The least level forwarded: the options' log_level, else Debug in debug mode, else Information.</summary>
    public static LogLevel LevelFromOptions(string logLevel, bool debug) =>
        RunhcsLogEntry.LevelOf(logLevel) ?? (debug ? LogLevel.Debug : LogLevel.Information);

    public LogLevel ForwardLevel => Minimum;

    /// <summary>Runs a command that does not touch the container's stdio; returns its stdout.</summary>
    public async Task<string> RunAsync(string command, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        string logFile = NewLogFile(command);
        using Process process = Launch(command, arguments, logFile);
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        Task<string> stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        process.StandardInput.Close();
        int exitCode = await WaitAsync(process, command, settings.CommandTimeout, logFile, cancellationToken).ConfigureAwait(false);
        string output = await Drain(stdout).ConfigureAwait(false);
        string errors = await Drain(stderr).ConfigureAwait(false);
        string? logged = CollectLog(command, logFile);
        if (exitCode != 0)
        {
            throw Fail(command, exitCode, logged ?? errors.Trim());
        }

        return output;
    }

    /// <summary>
    /// Runs <c>create</c> or <c>exec</c> with pipes as its stdio. runhcs hands them to the shim
    /// process it leaves behind, so after a successful call the returned process's standard
    /// streams are the container process's: the caller owns the Process and must not dispose it
    /// before the host is done with the streams.
    /// </summary>
    public async Task<Process> RunWithStdioAsync(
        string command, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken)
    {
        string logFile = NewLogFile(command);
        Process process = Launch(command, arguments, logFile);
        try
        {
            int exitCode = await WaitAsync(process, command, timeout, logFile, cancellationToken).ConfigureAwait(false);
            string? logged = CollectLog(command, logFile);
            if (exitCode != 0)
            {
                // No shim holds the pipes after a failure, so stderr ends: runhcs's message may be there too.
                string errors = await Drain(process.StandardError.ReadToEndAsync(CancellationToken.None)).ConfigureAwait(false);
                throw Fail(command, exitCode, logged ?? errors.Trim());
            }

            return process;
        }
        catch
        {
            process.Dispose();
            throw;
        }
    }

    private Exception Fail(string command, int exitCode, string message)
    {
        RunhcsLog.CommandFailed(logger, command, containerId, message);
        return RunhcsErrors.From(command, exitCode, message);
    }

    private Process Launch(string command, IReadOnlyList<string> arguments, string logFile)
    {
        var info = new ProcessStartInfo(binary)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = bundle,
        };
        if (debug)
        {
            info.ArgumentList.Add("--debug");
        }

        info.ArgumentList.Add("--log");
        info.ArgumentList.Add(logFile);
        info.ArgumentList.Add("--log-format");
        info.ArgumentList.Add("json");
        info.ArgumentList.Add("--owner");
        info.ArgumentList.Add(settings.Owner);
        string root = options.RegistryRoot.Length > 0 ? options.RegistryRoot : settings.Root ?? string.Empty;
        if (root.Length > 0)
        {
            info.ArgumentList.Add("--root");
            info.ArgumentList.Add(root);
        }

        info.ArgumentList.Add(command);
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        try
        {
            return Process.Start(info) ?? throw new RunhcsException(command, -1, $"runhcs {command}: could not start {binary}");
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new RunhcsException(command, -1, $"runhcs {command}: cannot run {binary}: {ex.Message}");
        }
    }

    private async Task<int> WaitAsync(
        Process process, string command, TimeSpan timeout, string logFile, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Whatever runhcs started on the way (a shim) goes with it; the caller cleans up the rest.
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Exited meanwhile.
            }

            CollectLog(command, logFile);
            cancellationToken.ThrowIfCancellationRequested();
            throw new TimeoutException(
                $"runhcs {command} for {containerId} did not finish within {timeout.TotalSeconds:0} s and was killed");
        }

        RunhcsLog.CommandFinished(logger, command, containerId, process.ExitCode, watch.ElapsedMilliseconds);
        return process.ExitCode;
    }

    private string NewLogFile(string command) =>
        Path.Combine(bundle, $"runhcs-{command}-{Guid.NewGuid().ToString("N")[..12]}.log");

    /// <summary>Forwards the call's log and deletes it; returns the last error runhcs logged, if any.</summary>
    private string? CollectLog(string command, string logFile)
    {
        string? lastError = null;
        try
        {
            if (!File.Exists(logFile))
            {
                return null;
            }

            byte[] content = File.ReadAllBytes(logFile);
            if (options.DebugType == DebugType.File)
            {
                File.AppendAllText(Path.Combine(bundle, "runhcs.log"), Encoding.UTF8.GetString(content));
            }

            foreach (LogLineReader.Line line in LogLineReader.Split(content))
            {
                RunhcsLogEntry? entry = RunhcsLogEntry.Decode(line.Text);
                if (entry is { Level: >= LogLevel.Error } && entry.Message.Trim().Length > 0)
                {
                    lastError = entry.Message.Trim();
                }

                LogForwarder.Forward(logger, Minimum, "cli", containerId, line);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            RunhcsLog.CleanupFailed(logger, containerId, $"read the log of runhcs {command}", ex);
        }
        finally
        {
            try
            {
                File.Delete(logFile);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                RunhcsLog.CleanupFailed(logger, containerId, $"delete {logFile}", ex);
            }
        }

        return lastError;
    }

    private static async Task<string> Drain(Task<string> reading)
    {
        try
        {
            return await reading.WaitAsync(OutputDrainTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            return string.Empty; // something runhcs started still holds the pipe; its output is not ours
        }
    }
}
