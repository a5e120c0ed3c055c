using System.Diagnostics;
using System.Globalization;

namespace PluggableShim.Host.Tasks;

/// <summary>
/// What the daemon leaves in a bundle so that <c>delete</c> can clean up after a daemon that died:
/// the init process's pid and its start time (so a recycled pid is never killed).
/// </summary>
internal static class BundleRecord
{
    private const string FileName = "pluggableshim-init";

    public static void Write(string bundle, int pid)
    {
        string? started = StartTime(pid);
        if (started is null)
        {
            return;
        }

        string path = Path.Combine(bundle, FileName);
        File.WriteAllText(path + ".tmp", $"{pid} {started}");
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>The recorded init pid if that very process still runs.</summary>
    public static int? LiveInit(string bundle)
    {
        string path = Path.Combine(bundle, FileName);
        if (!File.Exists(path))
        {
            return null;
        }

        string[] parts = File.ReadAllText(path).Split(' ');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
        {
            return null;
        }

        return StartTime(pid) == parts[1] ? pid : null;
    }

    /// <summary>Whether the process leads its own process group (its pgid is its pid).</summary>
    public static bool LeadsGroup(int pid) =>
        OperatingSystem.IsLinux() && StatField(pid, PgrpField) == pid.ToString(CultureInfo.InvariantCulture);

    // Windows asks Process for the start time (exact, from the kernel). Not on Linux: .NET derives
    // it from the boot time as each process estimates it, which differs between processes.
    private static string? StartTime(int pid) => OperatingSystem.IsWindows() ? ProcessStartTime(pid) : StatField(pid, StartTimeField);

    private static string? ProcessStartTime(int pid)
    {
        try
        {
            using Process process = Process.GetProcessById(pid);
            return process.StartTime.ToUniversalTime().Ticks.ToString(CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return null; // gone, or not ours to inspect
        }
    }

    // Fields of /proc/PID/stat counted after the parenthesised command name (which may hold
    // spaces): 0 is the state, so the pgrp (field 5) is 2 and the start time (field 22) is 19.
    private const int PgrpField = 2;
    private const int StartTimeField = 19;

    private static string? StatField(int pid, int index)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return fields.Length > index ? fields[index] : null;
        }
        catch (IOException)
        {
            return null;
        }
    }
}
