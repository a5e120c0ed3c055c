using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Fake;

/// <summary>
/// The Fake runtime: each container's process runs as a plain host process. No rootfs, no
/// mounts, no namespaces, no cgroups, no user switch: the spec's args (resolved on the host's
/// PATH or the spec's PATH), env and cwd are all it uses. Stats measures the process tree;
/// Update records resources without enforcing them; annotations inject faults.
/// </summary>
public sealed class FakePlugin : IShimPlugin
{
    /// <inheritdoc />
    public PluginInfo Info { get; } = new("fake", "0.2.0", "runs container processes as plain host processes")
    {
        // Windows would need job objects to find and stop a process tree, and a signal model: not written.
        OperatingSystems = ["linux", "macos"],
        // Not Checkpoint (the host answers Unimplemented) nor Terminal (no pty).
        Capabilities = TaskCapabilities.Exec | TaskCapabilities.Pause | TaskCapabilities.Pids
                       | TaskCapabilities.Stats | TaskCapabilities.Update,
    };

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, PluginContext context)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<IContainerRuntime, FakeRuntime>();
    }
}
