using Microsoft.Extensions.DependencyInjection;
using PluggableShim.Abstractions;
using PluggableShim.Plugins.Runhcs.Internal;

namespace PluggableShim.Plugins.Runhcs;

/// <summary>
/// The Runhcs runtime: Windows containers (process-isolated, Hyper-V isolated, LCOW) run by
/// driving <c>runhcs.exe</c> through its command line, the way containerd's early Windows shim did.
/// Settings (the shim config's <c>plugins.runhcs</c> section) say where runhcs is and how long to
/// wait for it; <c>containerd.runhcs.v1.Options</c> in the runtime options turn on debug logging.
/// </summary>
public sealed class RunhcsPlugin : IShimPlugin
{
    /// <inheritdoc />
    public PluginInfo Info { get; } = new("runhcs", "0.1.0", "runs Windows containers through runhcs.exe")
    {
        // Linux and macOS only so that the plugin's whole path can be tested with a stand-in runhcs.
        OperatingSystems = ["windows", "linux", "macos"],
        Capabilities = TaskCapabilities.Exec | TaskCapabilities.Pause | TaskCapabilities.Pids | TaskCapabilities.Terminal,
    };

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, PluginContext context)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(context);
        RunhcsSettings settings = RunhcsSettings.Parse(context.Settings);
        // The shim's -debug turns on runhcs's debug logs too, as the settings' "debug" does.
        services.AddSingleton(context.Debug ? settings with { Debug = true } : settings);
        services.AddSingleton<IContainerRuntime, RunhcsRuntime>();
    }
}
