using PluggableShim.Host.Cli;

namespace PluggableShim.Host.Windows;

/// <summary>
/// The host's path without descriptor passing, for Windows: <c>start</c> spawns the daemon with
/// <see cref="System.Diagnostics.Process"/>, the daemon creates and serves its own named pipe and
/// reports readiness on its redirected stdout, the group lock is a file opened for exclusive use,
/// and <c>delete</c> finds the recorded init process by pid and start time through
/// <see cref="System.Diagnostics.Process"/>. Always on for Windows; on Linux chosen by
/// <see cref="SwitchVariable"/>=1 so that tests run this path here (.NET emulates named pipes
/// with Unix sockets in the temp folder).
/// </summary>
internal static class PortableHost
{
    /// <summary>Test-only: set to 1 to take this path on Linux (inherited by the daemon).</summary>
    public const string SwitchVariable = "PLUGGABLESHIM_PORTABLE_HOST";

#if LAUNCHER
    // The native launcher is the Linux path: it hands the daemon its socket, and never takes this one.
    public static bool Enabled => false;
#else
    public static bool Enabled { get; } =
        OperatingSystem.IsWindows() || Environment.GetEnvironmentVariable(SwitchVariable) == "1";
#endif

    /// <summary>containerd's convention for a Windows shim's pipe; a pod's daemon is named by its group.</summary>
    public static string PipeName(string ns, string group) =>
        $@"ProtectedPrefix\Administrators\containerd-shim-{ns}-{group}-pipe";

    public static string PipeAddress(string ns, string group) => @"\\.\pipe\" + PipeName(ns, group);

    /// <summary>The pipe a Windows shim serves its own log on, which containerd dials (protocol.md §2).</summary>
    public static string LogPipeName(string ns, string containerId) => $"containerd-shim-{ns}-{containerId}-log";

    /// <summary>
    /// Where the group's marker and lock live. A pipe cannot be looked for without connecting to
    /// it, so the daemon leaves a marker file while it serves (as a socket file marks a Unix shim).
    /// </summary>
    public static string StateDirectory => OperatingSystem.IsWindows()
        ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.CommonApplicationData), "pluggableshim", "s")
        : ShimSocket.SocketDirectory;

    /// <summary>
    /// Whether the marker names a process that still runs (it holds the daemon's pid). A dead
    /// daemon's pipe cannot be told from a slow one except by waiting, so this is asked first.
    /// </summary>
    public static bool MarkerNamesLiveProcess(string marker)
    {
        try
        {
            if (!int.TryParse(File.ReadAllText(marker), System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out int pid))
            {
                return false;
            }

            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException
                                       or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // No marker, or no such process; or (Win32Exception, access denied) the dead daemon's
            // pid now belongs to a protected process, which is not our daemon either (Windows
            // only; cannot be caused here, so not run).
            return false;
        }
    }

    /// <summary>
    /// Off Windows only: removes the socket file by which .NET emulates pipe <paramref name="name"/>,
    /// left behind by a daemon that was killed. (A Windows pipe ends with its last handle.)
    /// </summary>
    public static void RemoveEmulatedPipe(string name)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.Delete(Path.Combine(Path.GetTempPath(), "CoreFxPipe_" + name));
        }
    }

    /// <summary>The marker of the daemon serving <paramref name="group"/>: named like a Unix shim's socket, plus <c>.pipe</c>.</summary>
    public static string MarkerPath(string containerdAddress, string ns, string group) =>
        Path.Combine(StateDirectory, Path.GetFileName(ShimSocket.PathFor(containerdAddress, ns, group)) + ".pipe");
}
