using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using PluggableShim.Abstractions;
using PluggableShim.Contracts.Cgroups.V2;
using PluggableShim.Plugins.Fake.Internal.Faults;
using PluggableShim.Plugins.Fake.Internal.Metrics;
using PluggableShim.Plugins.Fake.Tests.Support;

namespace PluggableShim.Plugins.Fake.Tests;

/// <summary>The Fake runtime on this host: real processes, faults from a real config.json.</summary>
public sealed class FakeRuntimeTests : IDisposable
{
    private const string P = FaultPlan.Prefix;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);
    private readonly List<TestBundle> _bundles = [];
    private readonly List<IRuntimeContainer> _containers = [];

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private FakeRuntime Runtime(TimeProvider? time = null) => new(NullLoggerFactory.Instance, time ?? TimeProvider.System);

    private TestBundle Bundle(string[] args, params (string Name, string Value)[] annotations)
    {
        var bundle = TestBundle.Create(args, annotations.ToDictionary(a => a.Name, a => a.Value));
        _bundles.Add(bundle);
        return bundle;
    }

    private async Task<IRuntimeContainer> CreateAsync(TestBundle bundle, IContainerEvents? events = null, TimeProvider? time = null)
    {
        IRuntimeContainer container = await Runtime(time).CreateAsync(bundle.Request(events ?? new RecordingEvents()), Token);
        _containers.Add(container);
        return container;
    }

    public void Dispose()
    {
        foreach (IRuntimeContainer container in _containers)
        {
            container.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }

        _bundles.ForEach(b => b.Dispose());
    }

    [Fact]
    public void The_plugin_declares_stats_and_update_but_not_checkpoint_or_terminals()
    {
        TaskCapabilities capabilities = new FakePlugin().Info.Capabilities;

        Assert.True(capabilities.HasFlag(TaskCapabilities.Stats | TaskCapabilities.Update | TaskCapabilities.Exec));
        Assert.False(capabilities.HasFlag(TaskCapabilities.Checkpoint));
        Assert.False(capabilities.HasFlag(TaskCapabilities.Terminal));
    }

    [Fact]
    public void The_plugin_registers_a_runtime_its_container_can_build()
    {
        var services = new ServiceCollection();
        services.AddSingleton<Microsoft.Extensions.Logging.ILoggerFactory>(NullLoggerFactory.Instance);
        new FakePlugin().ConfigureServices(services, new PluginContext("/nowhere", null));

        using ServiceProvider provider = services.BuildServiceProvider();
        Assert.IsType<FakeRuntime>(provider.GetRequiredService<IContainerRuntime>());
    }

    [Fact]
    public async Task Create_fails_with_the_injected_code_and_message()
    {
        TestBundle bundle = Bundle(["true"], (P + "create-error", "AlreadyExists:already there"));

        var ex = await Assert.ThrowsAsync<AlreadyExistsException>(() => CreateAsync(bundle));

        Assert.Equal("already there", ex.Message);
    }

    [Fact]
    public async Task A_bad_fault_annotation_fails_Create_with_InvalidArgument_even_for_an_exec_fault()
    {
        TestBundle bundle = Bundle(["true"], (P + "exec.probe.exit-code", "300"));

        var ex = await Assert.ThrowsAsync<InvalidArgumentException>(() => CreateAsync(bundle));

        Assert.Contains(P + "exec.probe.exit-code", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_delay_holds_the_call_for_the_given_time_then_fails_if_asked()
    {
        var time = new FakeTimeProvider();
        TestBundle bundle = Bundle(["true"], (P + "create-delay", "5s"), (P + "create-error", "NotFound"));

        Task<IRuntimeContainer> create = CreateAsync(bundle, time: time);
        await Task.Delay(50, Token);
        time.Advance(TimeSpan.FromSeconds(4.9));
        await Task.Delay(50, Token);
        Assert.False(create.IsCompleted, "Create ended before its delay");
        time.Advance(TimeSpan.FromSeconds(0.2));

        await Assert.ThrowsAsync<NotFoundException>(() => create.WaitAsync(Bound, Token));
    }

    [Fact]
    public async Task Create_delay_ends_with_the_calls_cancellation()
    {
        TestBundle bundle = Bundle(["true"], (P + "create-delay", "1h"));
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));

        Task<IRuntimeContainer> create = Runtime().CreateAsync(bundle.Request(new RecordingEvents()), cancel.Token);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => create.WaitAsync(Bound, Token));
    }

    [Fact]
    public async Task Start_fails_as_asked_and_spawns_nothing()
    {
        TestBundle bundle = Bundle(["sleep", "300"], (P + "start-error", "Unknown:kaput"));
        IRuntimeContainer container = await CreateAsync(bundle);

        var ex = await Assert.ThrowsAsync<InjectedFaultException>(() => container.Init.StartAsync(Token));

        Assert.Equal("kaput", ex.Message);
        Assert.Equal(0, container.Init.Pid);
        Assert.Empty(await container.ListPidsAsync(Token));
    }

    [Fact]
    public async Task A_start_delayed_by_a_fault_is_cut_short_when_the_container_goes_away()
    {
        var time = new FakeTimeProvider();
        TestBundle bundle = Bundle(["sleep", "300"], (P + "start-delay", "10m"));
        IRuntimeContainer container = await CreateAsync(bundle, time: time);
        Task<StartedProcess> start = container.Init.StartAsync(Token);
        await Task.Delay(50, Token);
        Assert.False(start.IsCompleted);

        await container.DisposeAsync();

        await Assert.ThrowsAsync<FailedPreconditionException>(() => start.WaitAsync(Bound, Token));
        Assert.Equal(0, container.Init.Pid);
    }

    [Fact]
    public async Task A_forced_exit_code_replaces_the_real_one()
    {
        IRuntimeContainer container = await CreateAsync(Bundle(["sh", "-c", "exit 3"], (P + "exit-code", "42")));

        await StartAndDrainAsync(container.Init);

        Assert.Equal(42, (await container.Init.Exited.WaitAsync(Bound, Token)).Status);
    }

    [Fact]
    public async Task Exit_after_ends_the_whole_process_tree_at_the_given_time_with_the_forced_code()
    {
        var time = new FakeTimeProvider();
        IRuntimeContainer container = await CreateAsync(
            Bundle(["sh", "-c", "sleep 300 & sleep 300"], (P + "exit-after", "30s"), (P + "exit-code", "7")), time: time);
        await StartAndDrainAsync(container.Init);
        await Processes.UntilAsync(() => container.ListPidsAsync().Result.Count == 3, "sh and its two sleeps did not start");
        IReadOnlyList<int> tree = await container.ListPidsAsync(Token);

        time.Advance(TimeSpan.FromSeconds(29));
        await Task.Delay(100, Token);
        Assert.False(container.Init.Exited.IsCompleted, "ended before exit-after");
        time.Advance(TimeSpan.FromSeconds(1));

        Assert.Equal(7, (await container.Init.Exited.WaitAsync(Bound, Token)).Status);
        await Processes.UntilAsync(() => !tree.Any(Processes.IsAlive), "a process of the tree survived exit-after");
    }

    [Fact]
    public async Task Exit_after_without_a_code_reports_0()
    {
        IRuntimeContainer container = await CreateAsync(Bundle(["sleep", "300"], (P + "exit-after", "100ms")));

        await StartAndDrainAsync(container.Init);

        Assert.Equal(0, (await container.Init.Exited.WaitAsync(Bound, Token)).Status);
    }

    [Fact]
    public async Task Oom_after_reports_the_oom_before_the_exit_and_ends_with_137_whatever_exit_code_says()
    {
        var events = new RecordingEvents();
        IRuntimeContainer container = await CreateAsync(
            Bundle(["sleep", "300"], (P + "oom-after", "200ms"), (P + "exit-code", "5")), events);
        events.Watched = container.Init;

        await StartAndDrainAsync(container.Init);
        ProcessExit exit = await container.Init.Exited.WaitAsync(Bound, Token);

        Assert.Equal(137, exit.Status);
        Assert.Equal(1, events.OomCount);
        Assert.False(events.ReportedAfterExit, "the OOM was reported after the exit");
        var metrics = Contracts.Cgroups.V2.Metrics.Parser.ParseFrom((await container.StatsAsync(Token)).Value.Span);
        Assert.Equal(1ul, metrics.MemoryEvents.OomKill);
    }

    [Fact]
    public async Task A_process_ending_before_its_timer_disarms_it()
    {
        var events = new RecordingEvents();
        var time = new FakeTimeProvider();
        IRuntimeContainer container = await CreateAsync(Bundle(["true"], (P + "oom-after", "1s")), events, time);

        await StartAndDrainAsync(container.Init);
        Assert.Equal(0, (await container.Init.Exited.WaitAsync(Bound, Token)).Status);
        time.Advance(TimeSpan.FromSeconds(2));
        await Task.Delay(100, Token);

        Assert.Equal(0, events.OomCount);
    }

    [Fact]
    public async Task Exec_faults_apply_to_every_exec_or_to_the_named_one()
    {
        IRuntimeContainer container = await CreateAsync(Bundle(
            ["sleep", "300"],
            (P + "exec.create-error", "FailedPrecondition:no execs here"),
            (P + "exec.probe.create-error", "Unimplemented:probes"),
            (P + "exec.ok.create-delay", "0s"),
            (P + "exec.ok.create-error", "Unknown:x"),
            (P + "exec.runs.start-error", "NotFound:gone")));
        await StartAndDrainAsync(container.Init);

        var any = await Assert.ThrowsAsync<FailedPreconditionException>(() => container.CreateExecAsync(Exec("e1"), Token));
        var probe = await Assert.ThrowsAsync<UnimplementedException>(() => container.CreateExecAsync(Exec("probe"), Token));

        Assert.Equal("no execs here", any.Message);
        Assert.Contains("probes", probe.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<InjectedFaultException>(() => container.CreateExecAsync(Exec("ok"), Token));
    }

    [Fact]
    public async Task An_exec_can_have_its_own_start_error_and_exit_code()
    {
        IRuntimeContainer container = await CreateAsync(Bundle(
            ["sleep", "300"],
            (P + "exec.start-error", "NotFound:no start"),
            (P + "exec.five.start-error", "Unknown:its own wins"),
            (P + "exec.five.exit-code", "5")));
        await StartAndDrainAsync(container.Init);

        IRuntimeProcess failing = await container.CreateExecAsync(Exec("e1"), Token);
        await Assert.ThrowsAsync<NotFoundException>(() => failing.StartAsync(Token));

        IRuntimeProcess five = await container.CreateExecAsync(Exec("five"), Token);
        await Assert.ThrowsAsync<InjectedFaultException>(() => five.StartAsync(Token));
    }

    [Fact]
    public async Task An_exec_exit_code_is_forced_and_the_init_is_untouched()
    {
        IRuntimeContainer container = await CreateAsync(Bundle(["sleep", "300"], (P + "exec.five.exit-code", "5")));
        await StartAndDrainAsync(container.Init);

        IRuntimeProcess five = await container.CreateExecAsync(Exec("five", "true"), Token);
        await StartAndDrainAsync(five);

        Assert.Equal(5, (await five.Exited.WaitAsync(Bound, Token)).Status);
        Assert.False(container.Init.Exited.IsCompleted);
    }

    [Fact]
    public async Task Stats_measure_the_process_tree_and_show_the_resources_of_the_bundle_then_of_each_update()
    {
        var bundle = TestBundle.Create(["sh", "-c", "sleep 300 & sleep 300"], resources: new { memory = new { limit = 1 << 24 } });
        _bundles.Add(bundle);
        IRuntimeContainer container = await CreateAsync(bundle);
        await StartAndDrainAsync(container.Init);
        await Processes.UntilAsync(() => container.ListPidsAsync().Result.Count == 3, "the tree did not start");

        TypedPayload first = await container.StatsAsync(Token);
        await container.UpdateAsync(
            new TypedPayload(ResourceLimits.LinuxResourcesType,
                Encoding.UTF8.GetBytes("""{"cpu":{"shares":256,"quota":20000},"pids":{"limit":32}}""")),
            new Dictionary<string, string>(), Token);
        await container.UpdateAsync(
            new TypedPayload(ResourceLimits.LinuxResourcesType, Encoding.UTF8.GetBytes("""{"memory":{"limit":33554432}}""")),
            new Dictionary<string, string>(), Token);
        var second = Contracts.Cgroups.V2.Metrics.Parser.ParseFrom((await container.StatsAsync(Token)).Value.Span);

        Assert.Equal(MetricsBuilder.TypeUrl, first.TypeUrl);
        var before = Contracts.Cgroups.V2.Metrics.Parser.ParseFrom(first.Value.Span);
        Assert.Equal(new PidsStat { Current = 3, Limit = 0 }, before.Pids);
        Assert.Equal(1ul << 24, before.Memory.UsageLimit);
        Assert.True(before.Memory.Usage > 0, "no resident memory measured");
        Assert.Equal(new PidsStat { Current = 3, Limit = 32 }, second.Pids);
        Assert.Equal(1ul << 25, second.Memory.UsageLimit);
    }

    [Fact]
    public async Task Update_with_anything_but_LinuxResources_is_InvalidArgument_and_changes_nothing()
    {
        IRuntimeContainer container = await CreateAsync(Bundle(["sleep", "300"]));

        await Assert.ThrowsAsync<InvalidArgumentException>(() => container.UpdateAsync(
            new TypedPayload(ResourceLimits.LinuxResourcesType, "{\"pids\":{\"limit\":\"many\"}}"u8.ToArray()),
            new Dictionary<string, string>(), Token));

        var metrics = Contracts.Cgroups.V2.Metrics.Parser.ParseFrom((await container.StatsAsync(Token)).Value.Span);
        Assert.Equal(0ul, metrics.Pids.Limit);
    }

    [Fact]
    public async Task Checkpoint_is_unimplemented()
    {
        IRuntimeContainer container = await CreateAsync(Bundle(["sleep", "300"]));

        await Assert.ThrowsAsync<UnimplementedException>(() => container.CheckpointAsync("/tmp/x", null, Token));
    }

    [Fact]
    public async Task Disposing_the_container_kills_every_process_it_started()
    {
        IRuntimeContainer container = await CreateAsync(Bundle(["sh", "-c", "sleep 300 & sleep 300"], (P + "exit-after", "10m")));
        await StartAndDrainAsync(container.Init);
        await Processes.UntilAsync(() => container.ListPidsAsync().Result.Count == 3, "the tree did not start");
        IReadOnlyList<int> tree = await container.ListPidsAsync(Token);

        await container.DisposeAsync();

        await Processes.UntilAsync(() => !tree.Any(Processes.IsAlive), "a process survived the container");
        Assert.Equal(137, (await container.Init.Exited.WaitAsync(Bound, Token)).Status);
    }

    private static CreateExecRequest Exec(string id, params string[] args) => new()
    {
        ExecId = id,
        ProcessSpecJson = System.Text.Json.JsonSerializer.Serialize(new
        {
            args = args.Length == 0 ? ["sleep", "300"] : args,
            env = new[] { "PATH=/usr/bin:/bin" },
            cwd = "/",
        }),
    };

    private static async Task StartAndDrainAsync(IRuntimeProcess process)
    {
        StartedProcess started = await process.StartAsync(Token);
        started.Stdin?.Dispose();
        _ = Processes.DrainAsync(started.Stdout);
        _ = Processes.DrainAsync(started.Stderr);
    }
}
