using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using PluggableShim.Abstractions;
using PluggableShim.Host.Events;
using PluggableShim.Host.Grouping;
using PluggableShim.Host.Logging;
using PluggableShim.Host.Plugins;
using PluggableShim.Host.Posix;
using PluggableShim.Host.Tasks;
using PluggableShim.Host.Transport;
using PluggableShim.Host.Windows;
using PluggableShim.Ttrpc;

namespace PluggableShim.Host.Cli;

/// <summary>
/// The long-lived shim: loads the selected plugin, serves the Task API on the socket
/// <c>start</c> bound, publishes events, and exits after the last task is deleted and
/// Shutdown is called — having answered and flushed its events.
/// </summary>
internal static class DaemonAction
{
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan DisposeTimeout = TimeSpan.FromSeconds(5);

    public static async Task<int> RunAsync(ShimArguments args)
    {
        // Windows (and the portable path's tests): the daemon serves a pipe of its own making.
        PipeDaemonEndpoint? pipe = PortableHost.Enabled ? new PipeDaemonEndpoint(args) : null;
        if (pipe is null)
        {
            // start handed these over without close-on-exec; a container process that inherited the
            // listening socket would keep it accepting after the daemon died, hiding its death from delete.
            Native.Fcntl(args.ListenFd, Native.FSetFd, Native.FdCloExec);
            Native.Fcntl(args.ReadyFd, Native.FSetFd, Native.FdCloExec);
        }

        string bundle = args.Bundle;
        // stdin of start, as it came: a bare Any or BootstrapParams (see StartInput).
        byte[] optionBytes = Convert.FromBase64String(Environment.GetEnvironmentVariable(StartAction.OptionsVariable) ?? string.Empty);
        Environment.SetEnvironmentVariable(StartAction.OptionsVariable, null); // not for the containers' processes
        StartInput? input = null;
        InvalidDataException? badInput = null;
        try
        {
            input = StartInput.Decode(optionBytes, args.Id, args.Namespace);
            args = args with { Debug = args.Debug || input.Debug };
        }
        catch (InvalidDataException ex)
        {
            badInput = ex; // reported through the readiness pipe below
        }

        var logs = new BundleLogSinks(pipe is null ? null : args.Namespace);
        logs.Add(args.Id, bundle);
        using ILoggerFactory loggerFactory = LoggerFactory.Create(builder => builder
            .SetMinimumLevel(args.Debug ? LogLevel.Debug : LogLevel.Information)
            .AddProvider(new LogfmtLoggerProvider(logs, args.Debug ? LogLevel.Debug : LogLevel.Information)));
        ILogger logger = loggerFactory.CreateLogger("PluggableShim.Host.Daemon");
        bool ready = false;
        try
        {
            if (badInput is not null || input is null)
            {
                throw badInput ?? new InvalidDataException("no start input");
            }

            string? configPath = PluginSelection.ConfigPathFromOptions(input.RuntimeOptions);
            ShimConfig config = configPath is not null ? ShimConfig.Load(configPath, required: true) : ShimConfig.Load(ShimConfig.DefaultPath());
            PluginActivator.LoadedPlugin loaded = PluginActivator.Load(config.ResolvePluginsDirectory(), args.Plugin);

            string socketPath = pipe?.MarkerPath ?? ShimSocket.PathFor(args.Address, args.Namespace, args.Group.Length > 0 ? args.Group : args.Id);
            ServiceProvider services = BuildServices(args, config, loaded, input, loggerFactory, logs, socketPath, pipe);
            await using ConfiguredAsyncDisposable disposeServices = services.ConfigureAwait(false);
            IContainerRuntime runtime = services.GetService<IContainerRuntime>()
                ?? throw new PluginLoadException(args.Plugin, "registered no IContainerRuntime");
            _ = runtime;

            var server = new TtrpcServer(new TtrpcServerOptions { RequireSameUser = true }, loggerFactory);
            await using ConfiguredAsyncDisposable disposeServer = server.ConfigureAwait(false);
            TaskService taskService = services.GetRequiredService<TaskService>();
            Contracts.Task.Task.BindService(server.Binder, taskService);
            Contracts.Task.V3.Task.BindService(server.Binder, new TaskV3Service(taskService));
            GroupMembership membership = services.GetRequiredService<GroupMembership>();
            Contracts.Group.Group.BindService(server.Binder, new GroupService(membership, args.GrpcSocket));
            // The container that started us: its Create follows.
            membership.Join(args.Id, args.Plugin, bundle: null);
            if (pipe is not null)
            {
                server.Serve(pipe.Listen());
            }
            else
            {
                var socket = new Socket(new SafeSocketHandle(args.ListenFd, ownsHandle: true));
                // Not owned: the membership removes the socket when it decides to exit, under the
                // group lock; by the time the listener closes, the path may be a successor's.
                server.Serve(TtrpcListener.FromListeningSocket(socket, socketPath, ownsPath: false));
            }

            // gRPC mode: the same Task service on a second socket; ttrpc stays for Join and delete.
            IGrpcServer? grpcServer = args.GrpcSocket.Length > 0
                ? await GrpcTransport.StartAsync(args.GrpcSocket, taskService, loggerFactory).ConfigureAwait(false)
                : null;
            await using ConfiguredAsyncDisposable disposeGrpc = (grpcServer ?? GrpcTransport.None).ConfigureAwait(false);

            ShimLifetime lifetime = services.GetRequiredService<ShimLifetime>();
            using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
            {
                context.Cancel = true;
                _ = membership.ExitNowAsync("SIGTERM");
            });

            SignalReady(args.ReadyFd, null);
            ready = true;
            DaemonLog.Serving(logger, args.Id, args.Plugin, loaded.Plugin.Info.Version, Environment.ProcessId);

            string reason = await lifetime.ExitRequested.ConfigureAwait(false);
            TasksLog.ShutdownRequested(logger, reason);
            await KillRemainingAsync(services.GetRequiredService<TaskTable>()).ConfigureAwait(false);
            using (var drain = new CancellationTokenSource(DrainTimeout))
            {
                await Task.WhenAll(
                    server.ShutdownAsync(drain.Token),
                    grpcServer?.StopAsync(drain.Token) ?? Task.CompletedTask).ConfigureAwait(false);
            }

            await services.GetRequiredService<IEventPublisher>().FlushAsync(FlushTimeout).ConfigureAwait(false);
            DaemonLog.Exiting(logger, reason);

            // Everything containerd needs is done. Disposal of plugin services must not keep a
            // shim alive: past this bound the process ends regardless.
            _ = Task.Delay(DisposeTimeout).ContinueWith(_ => Environment.Exit(0), TaskScheduler.Default);
            return 0;
        }
        catch (Exception ex) when (!ready)
        {
            string message = ex is PluginLoadException or InvalidDataException ? ex.Message : $"shim daemon failed to start: {ex.Message}";
            DaemonLog.StartFailed(logger, message, ex);
            SignalReady(args.ReadyFd, message);
            return 1;
        }
    }

    private static ServiceProvider BuildServices(
        ShimArguments args,
        ShimConfig config,
        PluginActivator.LoadedPlugin loaded,
        StartInput input,
        ILoggerFactory loggerFactory,
        BundleLogSinks logs,
        string socketPath,
        PipeDaemonEndpoint? pipe)
    {
        var services = new ServiceCollection();
        services.AddSingleton(loggerFactory);
        services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        services.AddSingleton(TimeProvider.System);

        string? settings = config.Plugins is { } all && all.TryGetValue(args.Plugin, out var section) ? section.GetRawText() : null;
        try
        {
            loaded.Plugin.ConfigureServices(services, new PluginContext(loaded.Directory, settings) { Debug = args.Debug });
        }
        catch (Exception ex)
        {
            throw PluginLoadException.From(args.Plugin, loaded.Directory, "threw while registering its services", ex);
        }

        services.AddSingleton(sp => EventTarget.Choose(args, input).Create(
            args.Namespace, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton(new ShimOptions
        {
            Namespace = args.Namespace,
            Plugin = loaded.Plugin.Info,
            StartOptions = input.StartOptions,
            IoOpenTimeout = TimeSpan.FromSeconds(config.IoOpenTimeoutSeconds ?? 10),
        });
        services.AddSingleton<ShimLifetime>();
        services.AddSingleton(logs);
        services.AddSingleton(sp => new GroupMembership(
            sp.GetRequiredService<ShimLifetime>(),
            sp.GetRequiredService<ShimOptions>(),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<GroupMembership>>(),
            socketPath,
            logs,
            pipe is null ? null : pipe.Withdraw));
        services.AddSingleton<TaskTable>();
        services.AddSingleton<TaskService>();
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = false });
    }

    private static async Task KillRemainingAsync(TaskTable tasks)
    {
        // Only reached with tasks left on SIGTERM: their processes must not outlive the shim.
        foreach (var container in tasks.All())
        {
            if (container.Init.State == Tasks.Internal.ProcessState.Running)
            {
                try
                {
                    await container.Init.Runtime.SignalAsync(9, all: true).ConfigureAwait(false);
                    await container.Init.ExitRecorded.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is ShimException or IOException or TimeoutException or InvalidOperationException)
                {
                    // Best effort on the way out.
                }
            }

            await container.Runtime.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static unsafe void SignalReady(int fd, string? failure)
    {
        if (PortableHost.Enabled)
        {
            PipeDaemonEndpoint.SignalReady(failure);
            return;
        }

        if (fd < 0)
        {
            return;
        }

        // Either the ready message or one line saying why not; start reads until we close.
        byte[] bytes = Encoding.UTF8.GetBytes(failure is null ? StartAction.ReadyMessage : failure.ReplaceLineEndings(" ") + "\n");
        fixed (byte* p = bytes)
        {
            Native.Write(fd, p, bytes.Length);
        }

        Native.Close(fd);
    }
}

internal static partial class DaemonLog
{
    [LoggerMessage(600, LogLevel.Information, "shim serving {ContainerId} with plugin {Plugin} {PluginVersion} (pid {ShimPid})",
        EventName = "Serving")]
    public static partial void Serving(ILogger logger, string containerId, string plugin, string pluginVersion, int shimPid);

    [LoggerMessage(601, LogLevel.Information, "shim exiting: {Reason}", EventName = "Exiting")]
    public static partial void Exiting(ILogger logger, string reason);

    [LoggerMessage(602, LogLevel.Error, "shim failed to start: {Message}", EventName = "StartFailed")]
    public static partial void StartFailed(ILogger logger, string message, Exception exception);
}
