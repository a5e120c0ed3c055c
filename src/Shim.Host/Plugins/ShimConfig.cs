using System.Text.Json;
using System.Text.Json.Serialization;

namespace PluggableShim.Host.Plugins;

/// <summary>
/// The shim's configuration file (JSON). Found at <c>$PLUGGABLESHIM_CONFIG</c>, else
/// <c>pluggableshim.json</c> beside the shim binary, else <c>/etc/pluggableshim/config.json</c>;
/// a runtime-options config path (<c>ctr run --runtime-config-path</c>) names another one per container.
/// </summary>
internal sealed class ShimConfig
{
    /// <summary>The plugin used when nothing else selects one.</summary>
    [JsonPropertyName("plugin")]
    public string? Plugin { get; init; }

    /// <summary>Where plugin folders live; relative paths are relative to the config file's folder.</summary>
    [JsonPropertyName("pluginsDirectory")]
    public string? PluginsDirectory { get; init; }

    /// <summary>Per-plugin settings, handed to the plugin as raw JSON.</summary>
    [JsonPropertyName("plugins")]
    public Dictionary<string, JsonElement>? Plugins { get; init; }

    /// <summary>How long Create waits for the client to open its end of a FIFO, in seconds.</summary>
    [JsonPropertyName("ioOpenTimeoutSeconds")]
    public double? IoOpenTimeoutSeconds { get; init; }

    /// <summary>
    /// What <c>start</c> prints, and so the transport containerd uses: <c>address</c> (default),
    /// <c>json-v2-ttrpc</c>, <c>json-v2-grpc</c>, <c>json-v3-ttrpc</c> or <c>json-v3-grpc</c>.
    /// </summary>
    [JsonPropertyName("startOutput")]
    public string? StartOutput { get; init; }

    [JsonIgnore]
    public string? SourcePath { get; private set; }

    /// <param name="path">The file; null for none.</param>
    /// <param name="required">Whether a missing file is an error (one named by the runtime options is).</param>
    public static ShimConfig Load(string? path, bool required = false)
    {
        if (path is null || !File.Exists(path))
        {
            return required
                ? throw new InvalidDataException($"shim config {path} (named by the runtime options) does not exist")
                : new ShimConfig();
        }

        try
        {
            ShimConfig config = JsonSerializer.Deserialize(File.ReadAllText(path), ShimConfigJson.Default.ShimConfig)
                                ?? new ShimConfig();
            config.SourcePath = Path.GetFullPath(path);
            if (config.IoOpenTimeoutSeconds is { } seconds && !(seconds > 0 && seconds <= 3600))
            {
                throw new InvalidDataException($"shim config {path}: ioOpenTimeoutSeconds must be between 0 and 3600, not {seconds}");
            }

            return config;
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"shim config {path} is not valid: {ex.Message}", ex);
        }
    }

    /// <summary>The host-wide config file, if any.</summary>
    public static string? DefaultPath()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable("PLUGGABLESHIM_CONFIG");
        if (!string.IsNullOrEmpty(fromEnvironment))
        {
            return fromEnvironment;
        }

        string beside = Path.Combine(AppContext.BaseDirectory, "pluggableshim.json");
        if (File.Exists(beside))
        {
            return beside;
        }

        return File.Exists("/etc/pluggableshim/config.json") ? "/etc/pluggableshim/config.json" : null;
    }

    public string ResolvePluginsDirectory()
    {
        if (string.IsNullOrEmpty(PluginsDirectory))
        {
            return Path.Combine(AppContext.BaseDirectory, "plugins");
        }

        string baseDirectory = SourcePath is null ? AppContext.BaseDirectory : Path.GetDirectoryName(SourcePath)!;
        return Path.GetFullPath(PluginsDirectory, baseDirectory);
    }
}

[JsonSerializable(typeof(ShimConfig))]
[JsonSourceGenerationOptions(ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true)]
internal sealed partial class ShimConfigJson : JsonSerializerContext;
