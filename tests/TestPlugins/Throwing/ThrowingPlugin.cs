using Microsoft.Extensions.DependencyInjection;
using PluggableShim.Abstractions;

namespace PluggableShim.TestPlugins;

/// <summary>A plugin whose registration throws.</summary>
public sealed class ThrowingPlugin : IShimPlugin
{
    /// <inheritdoc />
    public PluginInfo Info { get; } = new("throwing", "1.0.0", "throws while registering") { OperatingSystems = ["linux"] };

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, PluginContext context) =>
        throw new InvalidOperationException("registration refused on purpose");
}
