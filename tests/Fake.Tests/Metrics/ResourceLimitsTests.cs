using System.Text;
using PluggableShim.Abstractions;
using PluggableShim.Plugins.Fake.Internal.Metrics;

namespace PluggableShim.Plugins.Fake.Tests.Metrics;

public sealed class ResourceLimitsTests
{
    private static TypedPayload Linux(string json) => new(ResourceLimits.LinuxResourcesType, Encoding.UTF8.GetBytes(json));

    [Fact]
    public void LinuxResources_json_is_read_where_the_Fake_plugin_records_it()
    {
        ResourceLimits limits = ResourceLimits.FromPayload(Linux("""
            {"memory":{"limit":1048576,"reservation":524288,"swap":2097152},
             "cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0-1","mems":"0"},
             "pids":{"limit":64},
             "blockIO":{"weight":10},"devices":[{"allow":false,"access":"rwm"}]}
            """));

        Assert.Equal(
            new ResourceLimits
            {
                MemoryLimit = 1048576, MemoryReservation = 524288, MemorySwap = 2097152,
                CpuShares = 512, CpuQuota = 50000, CpuPeriod = 100000, Cpus = "0-1", Mems = "0",
                PidsLimit = 64,
            },
            limits);
    }

    [Fact]
    public void An_update_replaces_only_what_it_sets()
    {
        ResourceLimits before = new() { MemoryLimit = 100, CpuShares = 2, PidsLimit = 5 };

        ResourceLimits after = before.With(ResourceLimits.FromPayload(Linux("""{"memory":{"limit":200},"cpu":null}""")));

        Assert.Equal(new ResourceLimits { MemoryLimit = 200, CpuShares = 2, PidsLimit = 5 }, after);
    }

    [Fact]
    public void Another_type_url_is_InvalidArgument_naming_the_expected_one()
    {
        var payload = new TypedPayload("types.containerd.io/opencontainers/runtime-spec/1/WindowsResources", "{}"u8.ToArray());

        var ex = Assert.Throws<InvalidArgumentException>(() => ResourceLimits.FromPayload(payload));

        Assert.Contains(ResourceLimits.LinuxResourcesType, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("[]", "must be a LinuxResources JSON object")]
    [InlineData("""{"memory":5}""", "memory must be an object")]
    [InlineData("""{"memory":{"limit":"1G"}}""", "limit must be a 64-bit integer, not \"1G\"")]
    [InlineData("""{"cpu":{"shares":-1}}""", "shares must be an unsigned 64-bit integer, not -1")]
    [InlineData("""{"cpu":{"cpus":3}}""", "cpus must be a string, not 3")]
    public void Malformed_resources_are_InvalidArgument_saying_what_is_wrong(string json, string why)
    {
        var ex = Assert.Throws<InvalidArgumentException>(() => ResourceLimits.FromPayload(Linux(json)));

        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
    }
}
