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
    public static bool LeadsGroup(int pid) => StatField(pid, PgrpField) == pid.ToString(CultureInfo.InvariantCulture);

    private static string? StartTime(int pid) => StatField(pid, StartTimeField);

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
