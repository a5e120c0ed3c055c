using System.Globalization;
using System.Runtime.InteropServices;

namespace PluggableShim.Plugins.Fake.Internal;

/// <summary>
/// A host process and its descendants, found by parent pid. Linux reads /proc; other Unix
/// systems ask ps. (Windows would need job objects: not implemented, the plugin does not load there.)
/// </summary>
internal static partial class ProcessTree
{
    public static IReadOnlyList<int> Of(IEnumerable<int> roots)
    {
        Dictionary<int, List<int>> children = ChildrenByParent();
        var result = new List<int>();
        var queue = new Queue<int>(roots.Where(p => p > 0));
        var seen = new HashSet<int>();
        while (queue.TryDequeue(out int pid))
        {
            if (!seen.Add(pid))
            {
                continue;
            }

            result.Add(pid);
            if (children.TryGetValue(pid, out List<int>? kids))
            {
                kids.ForEach(queue.Enqueue);
            }
        }

        return result;
    }

    /// <summary>Sends a signal; false when the process no longer exists.</summary>
    public static bool Signal(int pid, int signal) => Kill(pid, signal) == 0;

    /// <summary>Signals every process of the process group <paramref name="pgid"/>; false when none is left.</summary>
    public static bool SignalGroup(int pgid, int signal) => pgid > 1 && Kill(-pgid, signal) == 0;

    /// <summary>
    /// Where a new session is available (Linux: util-linux's setsid, which execs in place, so the
    /// pid is the program's), a process started through it leads its own process group: all it
    /// forks stays in that group even when re-parented, and can be signalled as one.
    /// </summary>
    public static string? SessionLauncher { get; } =
        OperatingSystem.IsLinux() && File.Exists("/usr/bin/setsid") ? "/usr/bin/setsid" : null;

    public static bool Exists(int pid) => Kill(pid, 0) == 0 || Marshal.GetLastPInvokeError() != 3 /* ESRCH */;

    private static Dictionary<int, List<int>> ChildrenByParent()
    {
        var map = new Dictionary<int, List<int>>();
        foreach ((int pid, int ppid) in OperatingSystem.IsLinux() ? FromProc() : FromPs())
        {
            if (!map.TryGetValue(ppid, out List<int>? list))
            {
                map[ppid] = list = [];
            }

            list.Add(pid);
        }

        return map;
    }

    private static IEnumerable<(int Pid, int Parent)> FromProc()
    {
        foreach (string directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
            {
                continue;
            }

            string stat;
            try
            {
                stat = File.ReadAllText(Path.Combine(directory, "stat"));
            }
            catch (IOException)
            {
                continue; // exited while we looked
            }

            // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut after the last ')'.
            string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (fields.Length > 1 && int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out int ppid))
            {
                yield return (pid, ppid);
            }
        }
    }

    private static IEnumerable<(int Pid, int Parent)> FromPs()
    {
        using var ps = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("ps", "-A -o pid= -o ppid=")
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        })!;
        string output = ps.StandardOutput.ReadToEnd();
        ps.WaitForExit();
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2
                && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
                && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int ppid))
            {
                yield return (pid, ppid);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
