using System.Reflection;

namespace PluggableShim.Host.Plugins;

/// <summary>A plugin could not be loaded; the message names it and says why, in one line.</summary>
internal sealed class PluginLoadException(string plugin, string reason) : Exception($"plugin {plugin}: {reason}")
{
    /// <summary>
    /// The one line for <paramref name="ex"/>, thrown while the plugin was <paramref name="doing"/>:
    /// an assembly it needs that is not in its folder reads as a missing dependency, not as what it did.
    /// </summary>
    public static PluginLoadException From(string plugin, string directory, string doing, Exception ex)
    {
        if (ex is FileNotFoundException { FileName: { Length: > 0 } file } && !file.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
        {
            AssemblyName missing = new(file);
            return new PluginLoadException(plugin, $"lacks a dependency: {missing.Name} {missing.Version} is not in {directory} ({doing})");
        }

        return new PluginLoadException(plugin, $"{doing}: {ex.GetType().Name}: {ex.Message}");
    }
}
