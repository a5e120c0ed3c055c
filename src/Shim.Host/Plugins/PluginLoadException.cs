namespace PluggableShim.Host.Plugins;

/// <summary>A plugin could not be loaded; the message names it and says why, in one line.</summary>
internal sealed class PluginLoadException(string plugin, string reason) : Exception($"plugin {plugin}: {reason}");
