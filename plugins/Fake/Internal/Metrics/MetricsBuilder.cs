using PluggableShim.Contracts.Cgroups.V2;

namespace PluggableShim.Plugins.Fake.Internal.Metrics;

/// <summary>
/// Fills containerd's cgroup v2 <see cref="Contracts.Cgroups.V2.Metrics"/> from measured usage and
/// recorded limits. v2 rather than v1: ctr 1.6 prints more of it (user and system CPU, memory and
/// swap limits) and it is what a current Linux host reports.
/// </summary>
internal static class MetricsBuilder
{
    /// <summary>The Any type URL containerd and ctr resolve (a bare message name).</summary>
    public const string TypeUrl = "io.containerd.cgroups.v2.Metrics";

    /// <summary>How cgroup v2 reports an unset memory limit ("max"), and so containerd's statistics do.</summary>
    public const ulong Unlimited = ulong.MaxValue;

    public static Contracts.Cgroups.V2.Metrics Build(ProcessUsage usage, int pidCount, ResourceLimits limits, ulong ooms) => new()
    {
        Pids = new PidsStat
        {
            Current = (ulong)pidCount,
            Limit = limits.PidsLimit is > 0 and var pids ? (ulong)pids : 0,
        },
        Cpu = new CPUStat
        {
            UsageUsec = usage.UserMicros + usage.SystemMicros,
            UserUsec = usage.UserMicros,
            SystemUsec = usage.SystemMicros,
        },
        Memory = new MemoryStat
        {
            Usage = usage.RssBytes,
            Anon = usage.AnonBytes,
            File = usage.FileBytes,
            Shmem = usage.ShmemBytes,
            SwapUsage = usage.SwapBytes,
            Pgfault = usage.MinorFaults + usage.MajorFaults,
            Pgmajfault = usage.MajorFaults,
            UsageLimit = limits.MemoryLimit is > 0 and var memory ? (ulong)memory : Unlimited,
            SwapLimit = SwapLimit(limits),
        },
        MemoryEvents = new MemoryEvents { Oom = ooms, OomKill = ooms },
    };

    // OCI's swap is memory+swap together; cgroup v2's swap limit is the swap alone (runc converts the same way).
    private static ulong SwapLimit(ResourceLimits limits) => limits.MemorySwap switch
    {
        null or <= 0 => Unlimited,
        long swap when limits.MemoryLimit is > 0 and var memory => (ulong)Math.Max(0, swap - memory),
        long swap => (ulong)swap,
    };
}
