using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using PluggableShim.Contracts.Task;
using PluggableShim.Testing;
using PluggableShim.Testing.Containerd;
using PluggableShim.Ttrpc;
using Task = System.Threading.Tasks.Task;
using TaskClient = PluggableShim.Contracts.Task.Task.TaskClient;

// End-to-end comparison of our shim (Fake plugin) with Debian's Go containerd-shim-runc-v2, in one
// invocation, on one private containerd, runs alternating so that machine noise hits both alike.
// Usage: dotnet run -c Release --project bench/Shim.Bench [-- --runs N --out FILE.md] [--transports]
// --transports: only the daemon's start-up with ttrpc against gRPC mode (PluggableShim.Bench.TransportStartup).
int runs = 15;
string? output = null;
bool transportsOnly = false;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--runs": runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--out": output = args[++i]; break;
        case "--transports": transportsOnly = true; break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
    }
}

if (LocalContainerd.Unavailable() is { } reason)
{
    Console.Error.WriteLine($"cannot benchmark here: {reason}");
    return 1;
}

const string Ns = "bench";
const string Runc = "io.containerd.runc.v2";
string image = LocalContainerd.ImageReference;
string shimDirectory = await ShimBuild.DirectoryAsync();
string ours = await ShimBuild.InstalledAsAsync("fake");
await using LocalContainerd containerd = await LocalContainerd.StartAsync(shimDirectory);
await containerd.ImportBusyboxAsync(Ns);
var report = new StringBuilder();
void Line(string text)
{
    Console.WriteLine(text);
    report.AppendLine(text);
}

if (transportsOnly)
{
    await PluggableShim.Bench.TransportStartup.RunAsync(containerd, ours, runs, Line);
    if (output is not null)
    {
        await File.WriteAllTextAsync(output, report.ToString());
    }

    return 0;
}

int counter = 0;
string NewId(string stem) => $"{stem}-{++counter}";

async Task<double> TimeRunAsync(string runtime, params string[] extra)
{
    var watch = Stopwatch.StartNew();
    (await containerd.CtrAsync(Ns, ["run", "--rm", "--runtime", runtime, .. extra, image, NewId("run"), "true"])).EnsureSuccess();
    return watch.Elapsed.TotalMilliseconds;
}

Line($"# Shim benchmark: {runs} alternating runs each, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores");
Line("");
Line("Reference: Debian's `containerd-shim-runc-v2` (runc, real containers) under the same containerd 1.6.");
Line("Ours: `containerd-shim-fake-v1` (Fake plugin: host processes). Ratio = ours / reference (lower is better for time and memory).");
Line("");

// 1. A lone container: ctr run --rm … true.
await TimeRunAsync(ours);
await TimeRunAsync(Runc);
var lone = new Samples();
for (int i = 0; i < runs; i++)
{
    lone.Ours.Add(await TimeRunAsync(ours));
    lone.Reference.Add(await TimeRunAsync(Runc));
}

// 2. A container joining a running pod's shim (both shims group by the sandbox id annotation).
string podOurs = NewId("pod-ours"), podRunc = NewId("pod-runc");
foreach ((string pod, string runtime) in new[] { (podOurs, ours), (podRunc, Runc) })
{
    (await containerd.CtrAsync(Ns, ["run", "-d", "--runtime", runtime, "--annotation", $"io.kubernetes.cri.sandbox-id={pod}",
        image, pod, "sleep", "3600"])).EnsureSuccess();
}

var joined = new Samples();
for (int i = 0; i < runs; i++)
{
    joined.Ours.Add(await TimeRunAsync(ours, "--annotation", $"io.kubernetes.cri.sandbox-id={podOurs}"));
    joined.Reference.Add(await TimeRunAsync(Runc, "--annotation", $"io.kubernetes.cri.sandbox-id={podRunc}"));
}

Line("## Start-up");
Line("");
Line("| `ctr run --rm … true` | ours (median ms) | reference (median ms) | ratio |");
Line("|---|---|---|---|");
Line(lone.Row("a lone container"));
Line(joined.Row("a container joining a running pod's shim"));
Line("");

// 3. Memory of one shim with 1 and with 10 tasks (the pod's sandbox plus 9 members).
TaskClient oursClient = await ConnectAsync(podOurs);
TaskClient runcClient = await ConnectAsync(podRunc);
int oursPid = (int)(await oursClient.ConnectAsync(new ConnectRequest { Id = podOurs })).ShimPid;
int runcPid = (int)(await runcClient.ConnectAsync(new ConnectRequest { Id = podRunc })).ShimPid;
(long Rss, long Anon) oursOne = Memory(oursPid), runcOne = Memory(runcPid);
for (int i = 1; i < 10; i++)
{
    foreach ((string pod, string runtime) in new[] { (podOurs, ours), (podRunc, Runc) })
    {
        (await containerd.CtrAsync(Ns, ["run", "-d", "--runtime", runtime, "--annotation", $"io.kubernetes.cri.sandbox-id={pod}",
            image, $"{pod}-m{i}", "sleep", "3600"])).EnsureSuccess();
    }
}

await Task.Delay(1000);
(long Rss, long Anon) oursTen = Memory(oursPid), runcTen = Memory(runcPid);
Line("## Memory of one shim process");
Line("");
Line("| tasks | ours RSS / anon (MiB) | reference RSS / anon (MiB) | ratio RSS / anon |");
Line("|---|---|---|---|");
Line(MemoryRow(1, oursOne, runcOne));
Line(MemoryRow(10, oursTen, runcTen));
Line("");

// 4. State calls per second on one connection (the same ttrpc client drives both).
Line("## Task API State calls per second, one connection");
Line("");
Line("| callers | ours (calls/s) | reference (calls/s) | ratio (higher is better) |");
Line("|---|---|---|---|");
foreach (int callers in new[] { 1, 16 })
{
    var o = new List<double>();
    var r = new List<double>();
    for (int round = 0; round < 3; round++)
    {
        o.Add(await StateRateAsync(oursClient, podOurs, callers));
        r.Add(await StateRateAsync(runcClient, podRunc, callers));
    }

    Line($"| {callers} | {Median(o):0} | {Median(r):0} | {Median(o) / Median(r):0.00} |");
}

Line("");

// 5. Where our time goes: the shim's own steps, timed from a client that does what containerd does.
Line("## Where our start-up time goes (ours only, medians)");
Line("");
var steps = new Dictionary<string, List<double>>();
for (int i = 0; i < runs; i++)
{
    foreach ((string step, double ms) in await BreakdownAsync())
    {
        (steps.TryGetValue(step, out var list) ? list : steps[step] = []).Add(ms);
    }
}

Line("| step | median ms |");
Line("|---|---|");
foreach ((string step, List<double> samples) in steps)
{
    Line($"| {step} | {Median(samples):0.0} |");
}

// Clean up the pods.
foreach (string id in (await containerd.CtrAsync(Ns, ["task", "ls", "-q"])).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
{
    await containerd.CtrAsync(Ns, ["task", "rm", "-f", id]);
    await containerd.CtrAsync(Ns, ["container", "rm", id]);
}

if (output is not null)
{
    await File.WriteAllTextAsync(output, report.ToString());
}

return 0;

async Task<TaskClient> ConnectAsync(string id)
{
    string address = (await File.ReadAllTextAsync(Path.Combine(containerd.BundleOf(Ns, id), "address"))).Trim();
    return new TaskClient(await TtrpcClient.ConnectAsync(address));
}

async Task<double> StateRateAsync(TaskClient client, string id, int callers)
{
    var headers = new Metadata { { "containerd-namespace-ttrpc", Ns } };
    TimeSpan duration = TimeSpan.FromSeconds(2);
    long calls = 0;
    var watch = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, callers).Select(async _ =>
    {
        while (watch.Elapsed < duration)
        {
            await client.StateAsync(new StateRequest { Id = id }, headers);
            Interlocked.Increment(ref calls);
        }
    }));
    return calls / watch.Elapsed.TotalSeconds;
}

async Task<List<(string, double)>> BreakdownAsync()
{
    string id = NewId("steps");
    string bundle = Directory.CreateTempSubdirectory("psh-bench-").FullName;
    var spec = new { ociVersion = "1.0.2", process = new { args = new[] { "true" }, env = new[] { "PATH=/usr/bin:/bin" }, cwd = "/" } };
    await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), JsonSerializer.Serialize(spec));
    var result = new List<(string, double)>();
    var watch = Stopwatch.StartNew();
    CommandResult start = (await ProcessRunner.RunAsync(
        "/bin/sh",
        ["-c", $"cd '{bundle}' && exec '{ours}' -namespace {Ns} -address '{containerd.Address}' -publish-binary /usr/bin/containerd -id {id} start"],
        TimeSpan.FromSeconds(60),
        environment: new Dictionary<string, string> { ["TTRPC_ADDRESS"] = containerd.TtrpcAddress })).EnsureSuccess();
    result.Add(("`start` (spawns the daemon, waits until it serves)", watch.Elapsed.TotalMilliseconds));

    async Task Step(string name, Func<Task> call)
    {
        watch.Restart();
        await call();
        result.Add((name, watch.Elapsed.TotalMilliseconds));
    }

    await using TtrpcClient connection = await TtrpcClient.ConnectAsync(start.Stdout);
    var task = new TaskClient(connection);
    await Step("first call (Connect): daemon's first request", async () => await task.ConnectAsync(new ConnectRequest { Id = id }));
    await Step("Create (opens IO, plugin creates the container)", async () => await task.CreateAsync(new CreateTaskRequest { Id = id, Bundle = bundle }));
    await Step("Start", async () => await task.StartAsync(new StartRequest { Id = id }));
    await Step("Wait (process `true` runs and exits)", async () => await task.WaitAsync(new WaitRequest { Id = id }));
    await Step("Delete", async () => await task.DeleteAsync(new DeleteRequest { Id = id }));
    await Step("Shutdown", async () => await task.ShutdownAsync(new ShutdownRequest { Id = id }));
    Directory.Delete(bundle, recursive: true);
    return result;
}

static (long Rss, long Anon) Memory(int pid)
{
    long Field(string name) => File.ReadLines($"/proc/{pid}/status")
        .Where(l => l.StartsWith(name + ":", StringComparison.Ordinal))
        .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture))
        .Single();
    return (Field("VmRSS"), Field("RssAnon"));
}

static string MemoryRow(int tasks, (long Rss, long Anon) ours, (long Rss, long Anon) reference) =>
    $"| {tasks} | {ours.Rss / 1024.0:0.0} / {ours.Anon / 1024.0:0.0} | {reference.Rss / 1024.0:0.0} / {reference.Anon / 1024.0:0.0} | " +
    $"{(double)ours.Rss / reference.Rss:0.00} / {(double)ours.Anon / reference.Anon:0.00} |";

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
}

internal sealed class Samples
{
    public List<double> Ours { get; } = [];

    public List<double> Reference { get; } = [];

    public string Row(string what)
    {
        double o = Median(Ours), r = Median(Reference);
        return $"| {what} | {o:0} | {r:0} | {o / r:0.00} |";
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
