using Microsoft.Extensions.DependencyInjection;
using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Fake;

/// <summary>
/// The Fake runtime: each container's process runs as a plain host process. No rootfs, no
/// mounts, no namespaces, no cgroups, no user switch: the spec's args (resolved on the host's
/// PATH or the spec's PATH), env and cwd are all it uses.
/// </summary>
public sealed class FakePlugin : IShimPlugin
{
    /// <inheritdoc />
    public PluginInfo Info { get; } = new("fake", "0.1.0", "runs container processes as plain host processes")
    {
        OperatingSystems = ["linux", "macos"],
        Capabilities = TaskCapabilities.Exec | TaskCapabilities.Pause | TaskCapabilities.Pids,
    };

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, PluginContext context)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton<IContainerRuntime, FakeRuntime>();
    }
}
