using System.Globalization;
using System.Runtime.InteropServices;

namespace PluggableShim.Plugins.Fake.Internal.Metrics;

/// <summary>CPU and memory of one process, or the sum over several.</summary>
internal readonly record struct ProcessUsage(
    ulong UserMicros,
    ulong SystemMicros,
    ulong RssBytes,
    ulong AnonBytes,
    ulong FileBytes,
    ulong ShmemBytes,
    ulong SwapBytes,
    ulong MinorFaults,
    ulong MajorFaults)
{
    public static ProcessUsage operator +(ProcessUsage a, ProcessUsage b) => new(
        a.UserMicros + b.UserMicros,
        a.SystemMicros + b.SystemMicros,
        a.RssBytes + b.RssBytes,
        a.AnonBytes + b.AnonBytes,
        a.FileBytes + b.FileBytes,
        a.ShmemBytes + b.ShmemBytes,
        a.SwapBytes + b.SwapBytes,
        a.MinorFaults + b.MinorFaults,
        a.MajorFaults + b.MajorFaults);
}

/// <summary>
/// Measures host processes. On Linux it reads <c>/proc/PID/stat</c> and <c>/proc/PID/status</c>
/// (CPU time including reaped children, resident memory split into anonymous, file and shared, swap,
/// page faults). Elsewhere (macOS) it asks <see cref="System.Diagnostics.Process"/>, which knows
/// only CPU time and the resident set, so the split, swap and faults read 0 there.
/// </summary>
internal static partial class UsageSampler
{
    private const int ScClockTicksLinux = 2;
    private static readonly Lazy<long> s_ticksPerSecond = new(ReadTicksPerSecond);

    public static ProcessUsage Measure(IEnumerable<int> pids)
    {
        var total = default(ProcessUsage);
        foreach (int pid in pids)
        {
            if ((OperatingSystem.IsLinux() ? FromProc(pid) : FromProcessApi(pid)) is { } usage)
            {
                total += usage;
            }
        }

        return total;
    }

    /// <summary>One process from /proc, or null when it is gone.</summary>
    public static ProcessUsage? FromProc(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            string status = File.ReadAllText($"/proc/{pid}/status");
            return ParseProc(stat, status, s_ticksPerSecond.Value);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // it exited while we looked
        }
    }

    /// <summary>One process through the portable Process API, or null when it is gone.</summary>
    public static ProcessUsage? FromProcessApi(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return new ProcessUsage(
                UserMicros: (ulong)(process.UserProcessorTime.Ticks / TimeSpan.TicksPerMicrosecond),
                SystemMicros: (ulong)(process.PrivilegedProcessorTime.Ticks / TimeSpan.TicksPerMicrosecond),
                RssBytes: (ulong)process.WorkingSet64,
                AnonBytes: 0,
                FileBytes: 0,
                ShmemBytes: 0,
                SwapBytes: 0,
                MinorFaults: 0,
                MajorFaults: 0);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException
                                       or System.ComponentModel.Win32Exception or NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>Parses the text of <c>/proc/PID/stat</c> and <c>/proc/PID/status</c>.</summary>
    public static ProcessUsage ParseProc(string stat, string status, long ticksPerSecond)
    {
        // "pid (comm) state ppid …": comm may hold spaces and parentheses, so count fields after the last ')'.
        // From there index 0 is field 3 (state): minflt is field 10, majflt 12, utime 14, stime 15,
        // cutime 16, cstime 17 (proc(5)). Reaped children's CPU time counts, as it does in a cgroup.
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        ulong Field(int number) =>
            fields.Length > number - 3 && ulong.TryParse(fields[number - 3], NumberStyles.None, CultureInfo.InvariantCulture, out ulong v)
                ? v
                : 0;
        ulong TicksToMicros(ulong ticks) => ticksPerSecond > 0 ? ticks * 1_000_000 / (ulong)ticksPerSecond : 0;

        ulong rss = 0, anon = 0, file = 0, shmem = 0, swap = 0;
        foreach (string line in status.Split('\n'))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                continue;
            }

            // Values read "   1234 kB".
            string value = line[(colon + 1)..].Trim();
            if (!value.EndsWith(" kB", StringComparison.Ordinal)
                || !ulong.TryParse(value[..^3], NumberStyles.None, CultureInfo.InvariantCulture, out ulong kib))
            {
                continue;
            }

            ulong bytes = kib * 1024;
            switch (line[..colon])
            {
                case "VmRSS": rss = bytes; break;
                case "RssAnon": anon = bytes; break;
                case "RssFile": file = bytes; break;
                case "RssShmem": shmem = bytes; break;
                case "VmSwap": swap = bytes; break;
            }
        }

        return new ProcessUsage(
            UserMicros: TicksToMicros(Field(14) + Field(16)),
            SystemMicros: TicksToMicros(Field(15) + Field(17)),
            RssBytes: rss,
            AnonBytes: anon,
            FileBytes: file,
            ShmemBytes: shmem,
            SwapBytes: swap,
            MinorFaults: Field(10),
            MajorFaults: Field(12));
    }

    private static long ReadTicksPerSecond()
    {
        // USER_HZ is 100 on every mainstream Linux build, but it is a kernel choice: ask.
        long ticks = OperatingSystem.IsLinux() ? SysConf(ScClockTicksLinux) : -1;
        return ticks > 0 ? ticks : 100;
    }

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long SysConf(int name);
}
