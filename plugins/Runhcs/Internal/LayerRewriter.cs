using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Runhcs.Internal;

/// <summary>
/// Turns containerd's rootfs mount into the bundle's <c>windows.layerFolders</c>, the only way
/// runhcs learns a container's layers. The OCI runtime spec orders the list from the topmost
/// layer to the base layer with the scratch last; containerd's <c>parentLayerPaths</c> is already
/// topmost first, so the list is the parents as given, then the scratch (current hcsshim keeps the
/// given order for LCOW too; only old code reversed it).
/// </summary>
/// <remarks>
/// The rewrite replaces <c>layerFolders</c> instead of appending, so a retried Create leaves the
/// same list, and writes nothing when nothing changes. It goes to a temporary file in the bundle
/// that is renamed over config.json only when complete: on any failure the file is untouched.
/// </remarks>
internal static class LayerRewriter
{
    public const string WindowsLayer = "windows-layer";
    public const string LcowLayer = "lcow-layer";
    private const string ParentsOption = "parentLayerPaths=";

    /// <summary>What the rewrite decided.</summary>
    /// <param name="Changed">Whether config.json was rewritten.</param>
    /// <param name="Lcow">Whether the container is a Linux container in a utility VM.</param>
    /// <param name="LayerFolders">The final <c>windows.layerFolders</c>.</param>
    public sealed record Result(bool Changed, bool Lcow, IReadOnlyList<string> LayerFolders);

    public static Result Rewrite(string bundle, IReadOnlyList<MountSpec> rootfs, RunhcsOptions options)
    {
        ArgumentNullException.ThrowIfNull(rootfs);
        ArgumentNullException.ThrowIfNull(options);
        string configPath = Path.Combine(bundle, "config.json");
        byte[] original;
        try
        {
            original = File.ReadAllBytes(configPath);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new InvalidArgumentException($"bundle {bundle} has no config.json");
        }

        JsonObject spec = ParseSpec(original, configPath);
        (bool lcow, List<string>? layers) = LayersFromMounts(rootfs);
        JsonObject windows = WindowsSection(spec, configPath);
        if (layers is null)
        {
            // No mount: the client prepared the bundle itself; it must then name the layers.
            layers = ExistingLayers(windows, configPath)
                ?? throw new InvalidArgumentException(
                    "no rootfs mount was given and config.json has no windows.layerFolders: " +
                    $"expected one {WindowsLayer} or {LcowLayer} mount");
        }
        else
        {
            windows["layerFolders"] = new JsonArray([.. layers.Select(l => (JsonNode)JsonValue.Create(l))]);
        }

        lcow |= spec["linux"] is JsonObject;
        if ((lcow || options.HyperVIsolation) && windows["hyperv"] is not JsonObject)
        {
            if (windows["hyperv"] is not null)
            {
                throw new InvalidArgumentException($"{configPath}: windows.hyperv must be an object");
            }

            // LCOW always runs in a utility VM; runhcs takes an empty hyperv section as "use the defaults".
            windows["hyperv"] = new JsonObject();
        }

        MergeAnnotations(spec, options.DefaultContainerAnnotations, configPath);

        byte[] rewritten = JsonSerializer.SerializeToUtf8Bytes(spec, SerializerOptions);
        if (Normalized(original).AsSpan().SequenceEqual(rewritten))
        {
            return new Result(false, lcow, layers);
        }

        WriteAtomically(configPath, rewritten);
        return new Result(true, lcow, layers);
    }

    private static readonly JsonSerializerOptions SerializerOptions = new() { WriteIndented = false };

    private static JsonObject ParseSpec(byte[] bytes, string configPath)
    {
        try
        {
            return JsonNode.Parse(bytes) as JsonObject
                ?? throw new InvalidArgumentException($"{configPath} must hold a JSON object");
        }
        catch (JsonException ex)
        {
            throw new InvalidArgumentException($"{configPath} is not valid JSON: {ex.Message}", ex);
        }
    }

    /// <summary>The bytes as they would serialize unchanged, so that "nothing to do" writes nothing.</summary>
    private static byte[] Normalized(byte[] original) =>
        JsonSerializer.SerializeToUtf8Bytes(JsonNode.Parse(original), SerializerOptions);

    /// <summary>Validates the mounts; null layers when there is no mount at all.</summary>
    private static (bool Lcow, List<string>? Layers) LayersFromMounts(IReadOnlyList<MountSpec> rootfs)
    {
        if (rootfs.Count == 0)
        {
            return (false, null);
        }

        if (rootfs.Count > 1)
        {
            throw new InvalidArgumentException(
                $"expected exactly one rootfs mount ({WindowsLayer} or {LcowLayer}), got {rootfs.Count}: " +
                string.Join(", ", rootfs.Select(m => m.Type)));
        }

        MountSpec mount = rootfs[0];
        bool lcow = mount.Type switch
        {
            WindowsLayer => false,
            LcowLayer => true,
            _ => throw new InvalidArgumentException(
                $"rootfs mount has type \"{mount.Type}\"; runhcs takes only {WindowsLayer} or {LcowLayer}"),
        };

        if (string.IsNullOrWhiteSpace(mount.Source))
        {
            throw new InvalidArgumentException($"{mount.Type} mount has no source (the scratch layer folder)");
        }

        string[] parentOptions = [.. mount.Options.Where(o => o.StartsWith(ParentsOption, StringComparison.Ordinal))];
        if (parentOptions.Length == 0)
        {
            throw new InvalidArgumentException(
                $"{mount.Type} mount has no {ParentsOption} option: a container needs at least its base layer");
        }

        if (parentOptions.Length > 1)
        {
            throw new InvalidArgumentException($"{mount.Type} mount has {parentOptions.Length} {ParentsOption} options");
        }

        List<string> parents = ParseParents(parentOptions[0][ParentsOption.Length..], mount.Type);
        if (parents.Contains(mount.Source, StringComparer.OrdinalIgnoreCase))
        {
            throw new InvalidArgumentException($"{mount.Type} mount lists its scratch {mount.Source} among its parents");
        }

        return (lcow, [.. parents, mount.Source]);
    }

    private static List<string> ParseParents(string json, string type)
    {
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new InvalidArgumentException($"{type} mount: {ParentsOption} is not JSON: {ex.Message}", ex);
        }

        if (node is not JsonArray array)
        {
            throw new InvalidArgumentException($"{type} mount: {ParentsOption} must be a JSON array of folder paths");
        }

        var parents = new List<string>(array.Count);
        foreach (JsonNode? item in array)
        {
            if (item is not JsonValue value || !value.TryGetValue(out string? path) || string.IsNullOrWhiteSpace(path))
            {
                throw new InvalidArgumentException(
                    $"{type} mount: {ParentsOption} must hold only non-empty strings, found {item?.ToJsonString() ?? "null"}");
            }

            parents.Add(path);
        }

        if (parents.Count == 0)
        {
            throw new InvalidArgumentException($"{type} mount: {ParentsOption} is empty: a container needs at least its base layer");
        }

        return parents;
    }

    private static JsonObject WindowsSection(JsonObject spec, string configPath)
    {
        switch (spec["windows"])
        {
            case JsonObject windows:
                return windows;
            case null:
                var created = new JsonObject();
                spec["windows"] = created;
                return created;
            default:
                throw new InvalidArgumentException($"{configPath}: \"windows\" must be an object");
        }
    }

    private static List<string>? ExistingLayers(JsonObject windows, string configPath)
    {
        if (windows["layerFolders"] is not JsonArray array || array.Count == 0)
        {
            return null;
        }

        return [.. array.Select(item => item is JsonValue v && v.TryGetValue(out string? s) && s.Length > 0
            ? s
            : throw new InvalidArgumentException($"{configPath}: windows.layerFolders must hold only folder paths"))];
    }

    private static void MergeAnnotations(JsonObject spec, IReadOnlyDictionary<string, string> defaults, string configPath)
    {
        if (defaults.Count == 0)
        {
            return;
        }

        if (spec["annotations"] is not JsonObject annotations)
        {
            if (spec["annotations"] is not null)
            {
                throw new InvalidArgumentException($"{configPath}: \"annotations\" must be an object");
            }

            annotations = new JsonObject();
            spec["annotations"] = annotations;
        }

        // Defaults only: what the container's own config says wins.
        foreach ((string key, string value) in defaults.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (!annotations.ContainsKey(key))
            {
                annotations[key] = value;
            }
        }
    }

    private static void WriteAtomically(string configPath, byte[] content)
    {
        string directory = Path.GetDirectoryName(configPath)!;
        string temporary = Path.Combine(directory, $".config.json.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            // A rename within one folder replaces the file in one step: readers see old or new, never half.
            File.Move(temporary, configPath, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            TryDelete(temporary);
            throw new IOException($"cannot rewrite {configPath}: {ex.Message}", ex);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The temporary file is named for nobody; a leftover is harmless and removed with the bundle.
        }
    }

    /// <summary>For messages: a mount as one line.</summary>
    public static string Describe(MountSpec mount) =>
        new StringBuilder().Append(mount.Type).Append(' ').Append(mount.Source).Append(" [")
            .AppendJoin(", ", mount.Options).Append(']').ToString();
}
