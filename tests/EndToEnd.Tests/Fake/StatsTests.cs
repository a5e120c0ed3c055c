using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using PluggableShim.Contracts.Task;
using PluggableShim.EndToEnd.Tests.Support;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;
using PluggableShim.Ttrpc;
using Task = System.Threading.Tasks.Task;
using TaskClient = PluggableShim.Contracts.Task.Task.TaskClient;

namespace PluggableShim.EndToEnd.Tests.Fake;

/// <summary>
/// Stats through <c>ctr task metrics</c> (containerd relays the shim's cgroup v2 Metrics), and Update,
/// which ctr 1.6 has no command for: it is sent to the very shim containerd is using, over the socket
/// the shim wrote into the bundle, and its effect read back through containerd.
/// </summary>
[Collection(ContainerdCollection.Name)]
public sealed class StatsTests(ContainerdFixture fixture)
{
    private const string Ns = "e2e-stats";
    private const string LinuxResources = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";
    private static readonly string s_image = LocalContainerd.ImageReference;

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string NewId(string stem) => $"{stem}-{Guid.NewGuid().ToString("N")[..8]}";

    [Fact]
    public async Task Ctr_task_metrics_prints_the_process_tree_and_the_memory_limit_of_ctr_run()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("metrics");
        await RunDetachedAsync(containerd, id, ["--memory-limit", "104857600"], ["sh", "-c", "sleep 300 & sleep 300"]);
        try
        {
            await Poll.UntilAsync(() => Table(containerd, id).GetValueOrDefault("pids.current") == "3", "sh and its sleeps not counted");
            Dictionary<string, string> table = Table(containerd, id);

            Assert.Equal("104857600", table["memory.usage_limit"]);
            Assert.Equal("0", table["pids.limit"]);
            Assert.True(ulong.Parse(table["memory.usage"], System.Globalization.CultureInfo.InvariantCulture) > 0, "no memory measured");
            Assert.Equal(ulong.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture), table["memory.swap_limit"]);
        }
        finally
        {
            await RemoveAsync(containerd, id);
        }
    }

    [Fact]
    public async Task Metrics_as_json_show_the_cpu_a_busy_process_uses()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("busy");
        await RunDetachedAsync(containerd, id, [], ["sh", "-c", "while :; do :; done"]);
        try
        {
            await Poll.UntilAsync(() => Cpu(containerd, id) >= 200_000, "less than 0.2 s of cpu after a busy while", seconds: 20);
            using JsonDocument json = await JsonMetricsAsync(containerd, id);
            JsonElement cpu = json.RootElement.GetProperty("cpu");
            Assert.Equal(
                cpu.GetProperty("usage_usec").GetUInt64(),
                cpu.GetProperty("user_usec").GetUInt64() + (cpu.TryGetProperty("system_usec", out JsonElement s) ? s.GetUInt64() : 0));
        }
        finally
        {
            await RemoveAsync(containerd, id);
        }
    }

    [Fact]
    public async Task Update_records_the_resources_and_ctr_task_metrics_shows_them()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("update");
        await RunDetachedAsync(containerd, id, [], ["sleep", "300"]);
        try
        {
            await using TtrpcClient client = await ConnectToShimAsync(containerd, id);
            var task = new TaskClient(client);

            await task.UpdateAsync(Update(id, """{"memory":{"limit":67108864,"swap":134217728},"cpu":{"shares":512,"quota":50000,"period":100000},"pids":{"limit":40}}"""),
                cancellationToken: Token);
            Dictionary<string, string> first = Table(containerd, id);
            await task.UpdateAsync(Update(id, """{"pids":{"limit":20}}"""), cancellationToken: Token);
            Dictionary<string, string> second = Table(containerd, id);

            Assert.Equal("67108864", first["memory.usage_limit"]);
            Assert.Equal("67108864", first["memory.swap_limit"]); // cgroup v2 counts swap alone; OCI counts memory+swap
            Assert.Equal("40", first["pids.limit"]);
            Assert.Equal("20", second["pids.limit"]);
            Assert.Equal("67108864", second["memory.usage_limit"]); // what the second update did not set stays
        }
        finally
        {
            await RemoveAsync(containerd, id);
        }
    }

    [Fact]
    public async Task Update_with_malformed_resources_is_InvalidArgument_and_changes_nothing()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("badupdate");
        await RunDetachedAsync(containerd, id, [], ["sleep", "300"]);
        try
        {
            await using TtrpcClient client = await ConnectToShimAsync(containerd, id);
            var task = new TaskClient(client);

            var bad = await Assert.ThrowsAsync<RpcException>(async () =>
                await task.UpdateAsync(Update(id, """{"pids":{"limit":"lots"}}"""), cancellationToken: Token));
            var windows = await Assert.ThrowsAsync<RpcException>(async () => await task.UpdateAsync(
                new UpdateTaskRequest
                {
                    Id = id,
                    Resources = new Any { TypeUrl = "types.containerd.io/opencontainers/runtime-spec/1/WindowsResources", Value = ByteString.CopyFromUtf8("{}") },
                },
                cancellationToken: Token));

            Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
            Assert.Contains("limit must be a 64-bit integer", bad.Status.Detail, StringComparison.Ordinal);
            Assert.Equal(StatusCode.InvalidArgument, windows.StatusCode);
            Assert.Contains(LinuxResources, windows.Status.Detail, StringComparison.Ordinal);
            Assert.Equal("0", Table(containerd, id)["pids.limit"]);
        }
        finally
        {
            await RemoveAsync(containerd, id);
        }
    }

    [Fact]
    public async Task An_injected_oom_shows_in_the_memory_events_of_the_stopped_task()
    {
        LocalContainerd containerd = await fixture.RequireAsync(Ns);
        string id = NewId("oomstats");
        await RunDetachedAsync(containerd, id, ["--annotation", "io.pluggableshim.fake.oom-after=200ms"], ["sleep", "300"]);
        try
        {
            await containerd.Events.WaitForAsync(
                e => e.Namespace == Ns && e.ContainerId == id && e.Topic == "/tasks/exit", TimeSpan.FromSeconds(20), Token);

            using JsonDocument json = await JsonMetricsAsync(containerd, id);

            JsonElement events = json.RootElement.GetProperty("memory_events");
            Assert.Equal(1ul, events.GetProperty("oom").GetUInt64());
            Assert.Equal(1ul, events.GetProperty("oom_kill").GetUInt64());
            Assert.False(json.RootElement.GetProperty("pids").TryGetProperty("current", out _), "a stopped task still counts processes");
        }
        finally
        {
            await RemoveAsync(containerd, id);
        }
    }

    private static UpdateTaskRequest Update(string id, string json) => new()
    {
        Id = id,
        Resources = new Any { TypeUrl = LinuxResources, Value = ByteString.CopyFromUtf8(json) },
    };

    // containerd re-reads the bundle's `address` to reach its shim: so does this test.
    private static async Task<TtrpcClient> ConnectToShimAsync(LocalContainerd containerd, string id)
    {
        string address = (await File.ReadAllTextAsync(Path.Combine(containerd.BundleOf(Ns, id), "address"), Token)).Trim();
        return await TtrpcClient.ConnectAsync(address, cancellationToken: Token);
    }

    private async Task RunDetachedAsync(LocalContainerd containerd, string id, string[] options, string[] args) =>
        (await containerd.CtrAsync(Ns, ["run", "-d", "--runtime", fixture.FakeShim, .. options, s_image, id, .. args],
            cancellationToken: Token)).EnsureSuccess();

    // `ctr task metrics` (table) prints "METRIC VALUE" rows after the id and timestamp.
    private static Dictionary<string, string> Table(LocalContainerd containerd, string id)
    {
        CommandResult metrics = containerd.CtrAsync(Ns, ["task", "metrics", id], cancellationToken: Token).GetAwaiter().GetResult()
            .EnsureSuccess();
        return metrics.Stdout.Split('\n')
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(cells => cells.Length == 2 && cells[0].Contains('.', StringComparison.Ordinal))
            .ToDictionary(cells => cells[0], cells => cells[1]);
    }

    private static ulong Cpu(LocalContainerd containerd, string id) =>
        ulong.Parse(Table(containerd, id)["cpu.usage_usec"], System.Globalization.CultureInfo.InvariantCulture);

    private static async Task<JsonDocument> JsonMetricsAsync(LocalContainerd containerd, string id)
    {
        CommandResult metrics = (await containerd.CtrAsync(Ns, ["task", "metrics", "--format", "json", id], cancellationToken: Token))
            .EnsureSuccess();
        return JsonDocument.Parse(metrics.Stdout);
    }

    private static async Task RemoveAsync(LocalContainerd containerd, string id)
    {
        await containerd.CtrAsync(Ns, ["task", "rm", "-f", id], cancellationToken: CancellationToken.None);
        await containerd.CtrAsync(Ns, ["container", "rm", id], cancellationToken: CancellationToken.None);
    }
}
