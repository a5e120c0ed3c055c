using System.Text.RegularExpressions;
using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using PluggableShim.Contracts.RuntimeOptions;

namespace PluggableShim.Host.Plugins;

/// <summary>
/// Decides which plugin serves a container, in this order:
/// 1. the installed name: <c>containerd-shim-NAME-v1</c> with NAME other than <c>pluggable</c>;
/// 2. the shim config file named by the runtime options (<c>runtimeoptions.v1.Options</c> config_path);
/// 3. the bundle's annotation <c>io.pluggableshim.plugin</c>;
/// 4. the default of the host config file.
/// </summary>
internal static partial class PluginSelection
{
    public const string Annotation = "io.pluggableshim.plugin";
    public const string GenericName = "pluggable";
    public const string RuntimeOptionsType = "runtimeoptions.v1.Options";

    public sealed record Result(string Plugin, string Source, ShimConfig Config);

    public static Result Resolve(string invokedAs, ReadOnlyMemory<byte> startOptions, string bundle)
    {
        string? configPath = ConfigPathFromOptions(startOptions);
        ShimConfig config = configPath is not null ? ShimConfig.Load(configPath, required: true) : ShimConfig.Load(ShimConfig.DefaultPath());

        string? byName = PluginFromBinaryName(invokedAs);
        if (byName is not null)
        {
            return new Result(byName, $"binary name {Path.GetFileName(invokedAs)}", config);
        }

        if (configPath is not null && !string.IsNullOrEmpty(config.Plugin))
        {
            return new Result(config.Plugin, $"runtime options config {configPath}", config);
        }

        string? annotated = Grouping.ShimGroup.Annotation(bundle, Annotation);
        if (annotated is not null)
        {
            return new Result(annotated, $"annotation {Annotation}", config);
        }

        if (!string.IsNullOrEmpty(config.Plugin))
        {
            return new Result(config.Plugin, $"config {config.SourcePath}", config);
        }

        throw new InvalidOperationException(
            $"no plugin selected: install the shim as containerd-shim-NAME-v1, pass a config with \"plugin\" " +
            $"through the runtime options, set the annotation {Annotation}, or set \"plugin\" in the host config");
    }

    public static string? PluginFromBinaryName(string invokedAs)
    {
        string name = Path.GetFileName(invokedAs);
        if (name.EndsWith(".exe", StringComparison.OrdinalIgnoreCase))
        {
            name = name[..^4];
        }

        const string prefix = "containerd-shim-";
        int version = name.LastIndexOf("-v", StringComparison.Ordinal);
        if (!name.StartsWith(prefix, StringComparison.Ordinal) || version <= prefix.Length)
        {
            return null;
        }

        string plugin = name[prefix.Length..version];
        return plugin == GenericName ? null : plugin;
    }

    /// <summary>The config_path of a <c>runtimeoptions.v1.Options</c> Any, if that is what arrived.</summary>
    public static string? ConfigPathFromOptions(ReadOnlyMemory<byte> anyBytes)
    {
        if (anyBytes.IsEmpty)
        {
            return null;
        }

        try
        {
            Any any = Any.Parser.ParseFrom(anyBytes.Span);
            return ConfigPathFromOptions(any);
        }
        catch (InvalidProtocolBufferException)
        {
            return null;
        }
    }

    public static string? ConfigPathFromOptions(Any? any)
    {
        if (any is null || !IsType(any.TypeUrl, RuntimeOptionsType))
        {
            return null;
        }

        Options options = Options.Parser.ParseFrom(any.Value);
        return string.IsNullOrEmpty(options.ConfigPath) ? null : options.ConfigPath;
    }

    /// <summary>
    /// The plugin's folder, after checking the name is a plain name (it becomes a path) and the
    /// folder exists. <c>start</c> checks this too, so a typo fails before a daemon is spawned.
    /// </summary>
    public static string RequireInstalled(string pluginsDirectory, string name)
    {
        if (!NamePattern().IsMatch(name) || name.Length > 64)
        {
            throw new PluginLoadException(name, "the name must be lower-case letters and digits separated by '.', '_' or '-'");
        }

        string directory = Path.Combine(pluginsDirectory, name);
        if (!Directory.Exists(directory))
        {
            throw new PluginLoadException(name, $"not installed: no folder {directory}");
        }

        return directory;
    }

    [GeneratedRegex("^[a-z0-9]+(?:[._-][a-z0-9]+)*$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    /// <summary>containerd writes bare names; accept the prefixed form too.</summary>
    public static bool IsType(string typeUrl, string messageName) =>
        typeUrl == messageName || typeUrl.EndsWith("/" + messageName, StringComparison.Ordinal);
}
