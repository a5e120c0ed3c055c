using Microsoft.Extensions.DependencyInjection;
using PluggableShim.Abstractions;

namespace HostProcess;

/// <summary>
/// The plugin's entry point: the host finds this one public <see cref="IShimPlugin"/> in
/// hostprocess.dll, checks its name and operating systems, and calls <see cref="ConfigureServices"/>.
/// </summary>
public sealed class HostProcessPlugin : IShimPlugin
{
    /// <inheritdoc />
    public PluginInfo Info { get; } = new("hostprocess", "1.0.0", "runs each container's process as a plain host process")
    {
        OperatingSystems = ["linux"],
        // Every operation left out answers Unimplemented through the host (Pause, Pids, Stats, …).
        Capabilities = TaskCapabilities.Exec,
    };

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, PluginContext context)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton<IContainerRuntime, HostProcessRuntime>();
    }
}
