using System.Reflection;
using System.Text.RegularExpressions;
using McMaster.NETCore.Plugins;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;

namespace PluggableShim.Host.Plugins;

/// <summary>
/// Loads one plugin, only the selected one, from <c>PLUGINS/NAME/NAME.dll</c> (or the one
/// assembly in that folder that implements <see cref="IShimPlugin"/>), in its own load context
/// sharing only the contract and the Microsoft.Extensions abstractions with the host.
/// </summary>
internal static partial class PluginActivator
{

    public sealed record LoadedPlugin(IShimPlugin Plugin, string Directory);

    public static LoadedPlugin Load(string pluginsDirectory, string name)
    {
        string directory = PluginSelection.RequireInstalled(pluginsDirectory, name);

        string assemblyPath = FindAssembly(directory, name);
        try
        {
            PluginLoader loader = PluginLoader.CreateFromAssemblyFile(
                assemblyPath,
                sharedTypes: [typeof(IShimPlugin), typeof(IServiceCollection), typeof(ILogger), typeof(ILoggerFactory)],
                configure: config => config.PreferSharedTypes = true);
            Assembly assembly = loader.LoadDefaultAssembly();
            Type[] candidates = [.. assembly.GetExportedTypes()
                .Where(t => typeof(IShimPlugin).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })];
            if (candidates.Length != 1)
            {
                throw new PluginLoadException(name,
                    $"{Path.GetFileName(assemblyPath)} must export exactly one IShimPlugin implementation, found {candidates.Length}");
            }

            var plugin = (IShimPlugin)Activator.CreateInstance(candidates[0])!;
            if (plugin.Info.Name != name)
            {
                throw new PluginLoadException(name, $"the plugin in {directory} calls itself \"{plugin.Info.Name}\"");
            }

            if (!plugin.Info.OperatingSystems.Any(OperatingSystem.IsOSPlatform))
            {
                throw new PluginLoadException(name,
                    $"runs on {string.Join(", ", plugin.Info.OperatingSystems)}, not on this system");
            }

            return new LoadedPlugin(plugin, directory);
        }
        catch (PluginLoadException)
        {
            throw;
        }
        catch (Exception ex) when (ex is FileLoadException or FileNotFoundException or BadImageFormatException
                                       or ReflectionTypeLoadException or TypeLoadException or TargetInvocationException
                                       or MissingMethodException or InvalidCastException)
        {
            Exception cause = ex is TargetInvocationException { InnerException: { } inner } ? inner : ex;
            throw PluginLoadException.From(name, directory, $"failed to load from {assemblyPath}", cause);
        }
    }

    private static string FindAssembly(string directory, string name)
    {
        string conventional = Path.Combine(directory, name + ".dll");
        if (File.Exists(conventional))
        {
            return conventional;
        }

        string[] manifests = Directory.GetFiles(directory, "*.deps.json");
        if (manifests.Length == 1)
        {
            string candidate = manifests[0][..^".deps.json".Length] + ".dll";
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new PluginLoadException(name, $"no {name}.dll (or single *.deps.json with its assembly) in {directory}");
    }
}
