using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Newtonsoft.Json;
using PluggableShim.Abstractions;

namespace PluggableShim.TestPlugins;

/// <summary>
/// A plugin named after its assembly that depends on Newtonsoft.Json: its containers print the
/// Newtonsoft.Json version the plugin sees and a value serialized with it.
/// </summary>
public sealed class JsonPlugin : IShimPlugin
{
    /// <inheritdoc />
    public PluginInfo Info { get; } = new(typeof(JsonPlugin).Assembly.GetName().Name!, "1.0.0", "reports its Newtonsoft.Json")
    {
        OperatingSystems = ["linux"],
    };

    /// <inheritdoc />
    public void ConfigureServices(IServiceCollection services, PluginContext context)
    {
        // Uses its dependency while registering, as a plugin parsing its settings with it would.
        string version = typeof(JsonConvert).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
        string text = $"newtonsoft {version.Split('+')[0]} {JsonConvert.SerializeObject(new { plugin = Info.Name })}";
        services.AddSingleton<IContainerRuntime>(new EchoRuntime(text));
    }
}
