using System.Text.Json;
using PluggableShim.Host.Cli;

namespace PluggableShim.Host.Grouping;

/// <summary>
/// Which daemon serves a container: containers whose spec carries the same
/// <c>io.kubernetes.cri.sandbox-id</c> (a pod: the sandbox and its containers) share one; any
/// other container gets its own, named by its id.
/// </summary>
internal static class ShimGroup
{
    public const string SandboxIdAnnotation = "io.kubernetes.cri.sandbox-id";

    /// <summary>The group id for a container: the sandbox id of its bundle's spec, else its own id.</summary>
    public static string Of(string bundle, string containerId)
    {
        string? sandbox = Annotation(bundle, SandboxIdAnnotation);
        if (sandbox is null)
        {
            return containerId;
        }

        // It names the daemon's socket: the same rule as container ids.
        Identifiers.Validate(sandbox, $"annotation {SandboxIdAnnotation}");
        return sandbox;
    }

    /// <summary>A string annotation of the bundle's <c>config.json</c>, or null.</summary>
    public static string? Annotation(string bundle, string name)
    {
        string path = Path.Combine(bundle, "config.json");
        if (bundle.Length == 0 || !File.Exists(path))
        {
            return null;
        }

        try
        {
            using FileStream stream = File.OpenRead(path);
            using JsonDocument spec = JsonDocument.Parse(stream);
            return spec.RootElement.ValueKind == JsonValueKind.Object
                   && spec.RootElement.TryGetProperty("annotations", out JsonElement annotations)
                   && annotations.ValueKind == JsonValueKind.Object
                   && annotations.TryGetProperty(name, out JsonElement value)
                   && value.ValueKind == JsonValueKind.String
                ? value.GetString()
                : null;
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"{path} is not valid JSON: {ex.Message}", ex);
        }
    }
}
