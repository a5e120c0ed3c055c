using PluggableShim.Contracts.Cgroups.V2;
using PluggableShim.Plugins.Fake.Internal.Metrics;

namespace PluggableShim.Plugins.Fake.Tests.Metrics;

public sealed class MetricsBuilderTests
{
    private static readonly ProcessUsage s_usage = new(
        UserMicros: 300, SystemMicros: 200, RssBytes: 4096, AnonBytes: 1024, FileBytes: 2048, ShmemBytes: 1024,
        SwapBytes: 512, MinorFaults: 10, MajorFaults: 2);

    [Fact]
    public void Usage_and_recorded_limits_fill_the_cgroup_v2_fields_ctr_prints()
    {
        var limits = new ResourceLimits { MemoryLimit = 1 << 20, MemorySwap = 3 << 20, PidsLimit = 16, CpuShares = 512 };

        Contracts.Cgroups.V2.Metrics m = MetricsBuilder.Build(s_usage, pidCount: 3, limits, ooms: 1);

        Assert.Equal(new PidsStat { Current = 3, Limit = 16 }, m.Pids);
        Assert.Equal(new CPUStat { UsageUsec = 500, UserUsec = 300, SystemUsec = 200 }, m.Cpu);
        Assert.Equal(4096ul, m.Memory.Usage);
        Assert.Equal(1024ul, m.Memory.Anon);
        Assert.Equal(2048ul, m.Memory.File);
        Assert.Equal(512ul, m.Memory.SwapUsage);
        Assert.Equal(12ul, m.Memory.Pgfault);
        Assert.Equal(2ul, m.Memory.Pgmajfault);
        Assert.Equal(1ul << 20, m.Memory.UsageLimit);
        Assert.Equal(2ul << 20, m.Memory.SwapLimit); // OCI's swap is memory+swap; cgroup v2's is swap alone
        Assert.Equal(new MemoryEvents { Oom = 1, OomKill = 1 }, m.MemoryEvents);
    }

    [Fact]
    public void Unset_limits_read_as_cgroup_v2_reports_them()
    {
        Contracts.Cgroups.V2.Metrics m = MetricsBuilder.Build(s_usage, pidCount: 1, ResourceLimits.None, ooms: 0);

        Assert.Equal(0ul, m.Pids.Limit);
        Assert.Equal(MetricsBuilder.Unlimited, m.Memory.UsageLimit);
        Assert.Equal(MetricsBuilder.Unlimited, m.Memory.SwapLimit);
        Assert.Equal(MetricsBuilder.Unlimited,
            MetricsBuilder.Build(s_usage, 1, new ResourceLimits { MemorySwap = -1 }, 0).Memory.SwapLimit);
    }

    [Fact]
    public void The_message_round_trips_under_its_bare_type_name()
    {
        Contracts.Cgroups.V2.Metrics m = MetricsBuilder.Build(s_usage, 2, ResourceLimits.None, 0);

        Assert.Equal(MetricsBuilder.TypeUrl, Contracts.Cgroups.V2.Metrics.Descriptor.FullName);
        Assert.Equal(m, Contracts.Cgroups.V2.Metrics.Parser.ParseFrom(Google.Protobuf.MessageExtensions.ToByteArray(m)));
    }
}
