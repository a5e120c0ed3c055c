using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using PluggableShim.Contracts.Task;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;
using PluggableShim.Conformance;
using Task = System.Threading.Tasks.Task;
using TaskClient = PluggableShim.Contracts.Task.Task.TaskClient;

namespace PluggableShim.Bench;

/// <summary>
/// The cost of gRPC mode at start-up: our shim's <c>start</c> (which returns once the daemon
/// serves) plus the first call (Connect) on the printed address, with <c>startOutput</c>
/// <c>address</c> (ttrpc) and <c>json-v3-grpc</c> alternately, and the daemon's memory then.
/// </summary>
internal static class TransportStartup
{
    private static readonly string[] TrueCommand = ["true"];

    public static async Task RunAsync(LocalContainerd containerd, string shim, int runs, Action<string> line)
    {
        string[] forms = ["address", "json-v3-grpc"];
        var times = forms.ToDictionary(f => f, _ => new List<double>());
        var memory = forms.ToDictionary(f => f, _ => new List<(long Rss, long Anon)>());
        for (int i = -1; i < runs; i++) // the first round warms the file cache, and is not counted
        {
            foreach (string form in forms)
            {
                (double ms, (long, long) mem) = await OnceAsync(containerd, shim, form, $"tx-{form[..4]}-{i + 1}");
                if (i >= 0)
                {
                    times[form].Add(ms);
                    memory[form].Add(mem);
                }
            }
        }

        double ttrpc = Median(times["address"]), grpc = Median(times["json-v3-grpc"]);
        line("## Start-up of the daemon by transport");
        line("");
        line($"`start` until the daemon serves, plus the first call (Connect) on the printed address; {runs} alternating runs, medians.");
        line("");
        line("| startOutput | start + first call (ms) | RSS / anon (MiB) |");
        line("|---|---|---|");
        foreach (string form in forms)
        {
            line(string.Create(CultureInfo.InvariantCulture,
                $"| `{form}` | {Median(times[form]):0} | {Median(memory[form].Select(m => (double)m.Rss).ToList()) / 1024:0.0} / {Median(memory[form].Select(m => (double)m.Anon).ToList()) / 1024:0.0} |"));
        }

        line("");
        line(string.Create(CultureInfo.InvariantCulture, $"gRPC / ttrpc: {grpc / ttrpc:0.00}×"));
        line("");
    }

    private static async Task<(double Ms, (long Rss, long Anon) Memory)> OnceAsync(LocalContainerd containerd, string shim, string form, string id)
    {
        const string Ns = "bench";
        string bundle = Directory.CreateTempSubdirectory("psh-bench-").FullName;
        string config = Path.Combine(bundle, "..", $"psh-bench-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), JsonSerializer.Serialize(new
        {
            ociVersion = "1.0.2",
            process = new { args = TrueCommand, cwd = "/" },
            root = new { path = "rootfs" },
        }));
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new { startOutput = form }));
        try
        {
            var watch = Stopwatch.StartNew();
            CommandResult started = (await ProcessRunner.RunAsync(
                "/bin/sh",
                ["-c", $"cd '{bundle}' && exec '{shim}' -namespace {Ns} -address '{containerd.Address}' -publish-binary /usr/bin/containerd -id {id} start"],
                TimeSpan.FromSeconds(60),
                environment: new Dictionary<string, string>
                {
                    ["TTRPC_ADDRESS"] = containerd.TtrpcAddress,
                    ["GRPC_ADDRESS"] = containerd.Address,
                    ["PLUGGABLESHIM_CONFIG"] = config,
                })).EnsureSuccess();
            await using ShimConnection connection = await ShimAddress.Parse(started.Stdout).ConnectAsync();
            var task = new TaskClient(connection.CallInvoker);
            int pid = (int)(await task.ConnectAsync(new ConnectRequest { Id = id })).ShimPid;
            double ms = watch.Elapsed.TotalMilliseconds;
            (long, long) memory = Memory(pid);

            await task.CreateAsync(new CreateTaskRequest { Id = id, Bundle = bundle });
            await task.StartAsync(new StartRequest { Id = id });
            await task.WaitAsync(new WaitRequest { Id = id });
            await task.DeleteAsync(new DeleteRequest { Id = id });
            await task.ShutdownAsync(new ShutdownRequest { Id = id });
            for (int i = 0; i < 200 && Posix.IsAlive(pid); i++)
            {
                await Task.Delay(25);
            }

            return (ms, memory);
        }
        finally
        {
            File.Delete(config);
            Directory.Delete(bundle, recursive: true);
        }
    }

    private static (long Rss, long Anon) Memory(int pid)
    {
        long Field(string name) => File.ReadLines($"/proc/{pid}/status")
            .Where(l => l.StartsWith(name + ":", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture))
            .Single();
        return (Field("VmRSS"), Field("RssAnon"));
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
