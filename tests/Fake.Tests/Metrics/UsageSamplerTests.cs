using System.Diagnostics;
using PluggableShim.Plugins.Fake.Internal.Metrics;
using PluggableShim.Plugins.Fake.Tests.Support;

namespace PluggableShim.Plugins.Fake.Tests.Metrics;

public sealed class UsageSamplerTests
{
    private const string Stat =
        "1234 (we ird) name) S 1 1234 1234 0 -1 4194560 150 7 3 1 250 50 20 10 20 0 1 0 100 2000000 300 " +
        "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";

    private const string Status = """
        Name:	weird
        VmRSS:	    1200 kB
        RssAnon:	     200 kB
        RssFile:	     900 kB
        RssShmem:	     100 kB
        VmSwap:	      16 kB
        Threads:	1
        """;

    [Fact]
    public void Proc_text_is_read_field_by_field_with_reaped_children_counted()
    {
        ProcessUsage usage = UsageSampler.ParseProc(Stat, Status, ticksPerSecond: 100);

        // utime 250 + cutime 20 ticks, stime 50 + cstime 10 ticks, at 10 ms a tick.
        Assert.Equal(2_700_000ul, usage.UserMicros);
        Assert.Equal(600_000ul, usage.SystemMicros);
        Assert.Equal(1200ul * 1024, usage.RssBytes);
        Assert.Equal(200ul * 1024, usage.AnonBytes);
        Assert.Equal(900ul * 1024, usage.FileBytes);
        Assert.Equal(100ul * 1024, usage.ShmemBytes);
        Assert.Equal(16ul * 1024, usage.SwapBytes);
        Assert.Equal(150ul, usage.MinorFaults);
        Assert.Equal(3ul, usage.MajorFaults);
    }

    [Fact]
    public void A_zombie_without_memory_lines_reads_zero_memory()
    {
        ProcessUsage usage = UsageSampler.ParseProc(Stat, "Name:\tz\nState:\tZ (zombie)\n", ticksPerSecond: 100);

        Assert.Equal(0ul, usage.RssBytes);
        Assert.Equal(2_700_000ul, usage.UserMicros);
    }

    [Fact]
    public void A_process_that_is_gone_reads_as_nothing_on_either_path()
    {
        Assert.Null(UsageSampler.FromProc(int.MaxValue));
        Assert.Null(UsageSampler.FromProcessApi(int.MaxValue));
        Assert.Equal(default, UsageSampler.Measure([int.MaxValue]));
    }

    [Fact]
    public async Task A_busy_process_shows_cpu_time_and_resident_memory_on_both_paths()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "the /proc path exists on Linux only");
        using var busy = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "while :; do :; done"]))!;
        try
        {
            // Polled, not slept: on a loaded machine the loop may get little of a core at first.
            await Processes.UntilAsync(
                () => UsageSampler.FromProc(busy.Id) is { } u && u.UserMicros + u.SystemMicros >= 50_000,
                "the busy loop showed no cpu time in /proc");
            ProcessUsage proc = UsageSampler.FromProc(busy.Id) ?? throw new InvalidOperationException("no /proc entry");
            ProcessUsage api = UsageSampler.FromProcessApi(busy.Id) ?? throw new InvalidOperationException("no process");

            Assert.True(proc.RssBytes > 0);
            Assert.True(api.UserMicros + api.SystemMicros >= 50_000, $"cpu {api.UserMicros}+{api.SystemMicros} us");
            Assert.True(api.RssBytes > 0);
        }
        finally
        {
            busy.Kill();
            await busy.WaitForExitAsync(CancellationToken.None);
        }
    }
}
