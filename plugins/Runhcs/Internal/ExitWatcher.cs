using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Runhcs.Internal;

/// <summary>
/// Watches a runhcs shim process (the pid runhcs writes to its pid file) and reports how it
/// ended. runhcs's shim exits with the exit code of the container process it stands for.
/// </summary>
/// <remarks>
/// The shim is not our child: runhcs started it and exited. On Windows any process can be
/// waited for through a handle, opened here at once so that the pid cannot be reused under us.
/// On Linux only a parent learns an exit status, so the shim makes itself a child subreaper:
/// the orphaned runhcs shim is re-parented to it and reaped here by its pid alone (never
/// waitpid(-1), which would steal the statuses of processes .NET started).
/// </remarks>
internal static partial class ExitWatcher
{
    private const int UnobservedStatus = 255;
    private const int PrSetChildSubreaper = 36;
    private const int Echild = 10;
    private const int Eintr = 4;
    private static readonly Lock s_gate = new();

    // Guarded by s_gate.
    private static bool s_subreaperTried;
    private static bool s_subreaper;

    /// <summary>Makes later orphans our children (Linux); call before runhcs starts any shim.</summary>
    public static void EnsureSubreaper(ILogger logger)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        bool failed = false;
        lock (s_gate)
        {
            if (!s_subreaperTried)
            {
                s_subreaperTried = true;
                s_subreaper = Prctl(PrSetChildSubreaper, 1, 0, 0, 0) == 0;
                failed = !s_subreaper;
            }
        }

        if (failed)
        {
            RunhcsLog.SubreaperFailed(logger);
        }
    }

    /// <summary>Completes when the process has ended, with its status; never faults.</summary>
    public static Task<ProcessExit> Watch(int pid, string containerId, ILogger logger)
    {
        if (OperatingSystem.IsWindows())
        {
            return WatchHandleAsync(pid, containerId, logger);
        }

        var exited = new TaskCompletionSource<ProcessExit>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() => exited.TrySetResult(Reap(pid, containerId, logger)))
        {
            IsBackground = true,
            Name = $"runhcs-reap-{pid}",
        };
        thread.Start();
        return exited.Task;
    }

    private static async Task<ProcessExit> WatchHandleAsync(int pid, string containerId, ILogger logger)
    {
        Process process;
        try
        {
            process = Process.GetProcessById(pid);
            _ = process.SafeHandle; // open it now: from here the pid cannot be recycled under us
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            RunhcsLog.ExitUnobserved(logger, containerId, pid, "the process had ended before it could be opened",
                UnobservedStatus);
            return new ProcessExit(UnobservedStatus, DateTimeOffset.UtcNow);
        }

        using (process)
        {
            try
            {
                await process.WaitForExitAsync().ConfigureAwait(false);
                return new ProcessExit(process.ExitCode, DateTimeOffset.UtcNow);
            }
            catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                RunhcsLog.ExitUnobserved(logger, containerId, pid, ex.Message, UnobservedStatus);
                return new ProcessExit(UnobservedStatus, DateTimeOffset.UtcNow);
            }
        }
    }

    private static ProcessExit Reap(int pid, string containerId, ILogger logger)
    {
        while (true)
        {
            int status = 0;
            int result = WaitPid(pid, ref status, 0);
            if (result == pid)
            {
                // WIFEXITED: low 7 bits zero, code in the next byte; otherwise the signal is the low 7 bits.
                int signal = status & 0x7F;
                return new ProcessExit(signal == 0 ? (status >> 8) & 0xFF : 128 + signal, DateTimeOffset.UtcNow);
            }

            int errno = Marshal.GetLastPInvokeError();
            if (result < 0 && errno == Eintr)
            {
                continue;
            }

            // Not our child (no subreaper, or reaped by someone else): wait for it to go, status unknown.
            while (Kill(pid, 0) == 0)
            {
                Thread.Sleep(50);
            }

            RunhcsLog.ExitUnobserved(logger, containerId, pid,
                errno == Echild ? "it is not a child of the shim" : $"waitpid failed with errno {errno}", UnobservedStatus);
            return new ProcessExit(UnobservedStatus, DateTimeOffset.UtcNow);
        }
    }

    /// <summary>Sends a signal to a pid (negative: a process group); false when nothing was there.</summary>
    public static bool Signal(int pid, int signal) => Kill(pid, signal) == 0;

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int Prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);

    [LibraryImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    private static partial int WaitPid(int pid, ref int status, int options);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
