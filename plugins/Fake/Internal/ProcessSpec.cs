using System.Text.Json;
using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Fake.Internal;

/// <summary>The parts of an OCI runtime-spec Process the Fake plugin honours.</summary>
internal sealed record ProcessSpec(IReadOnlyList<string> Args, IReadOnlyList<string> Env, string Cwd, bool Terminal)
{
    public static ProcessSpec Parse(string json)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(json);
            return Parse(document.RootElement);
        }
        catch (JsonException ex)
        {
            throw new InvalidArgumentException($"process spec is not valid JSON: {ex.Message}", ex);
        }
    }

    public static ProcessSpec Parse(JsonElement process)
    {
        if (process.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidArgumentException("process spec must be a JSON object");
        }

        string[] args = Strings(process, "args");
        if (args.Length == 0 || args[0].Length == 0)
        {
            throw new InvalidArgumentException("process spec has no args to run");
        }

        string cwd = process.TryGetProperty("cwd", out JsonElement c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : "/";
        bool terminal = process.TryGetProperty("terminal", out JsonElement t) && t.ValueKind == JsonValueKind.True;
        return new ProcessSpec(args, Strings(process, "env"), cwd, terminal);
    }

    private static string[] Strings(JsonElement parent, string name)
    {
        if (!parent.TryGetProperty(name, out JsonElement array) || array.ValueKind == JsonValueKind.Null)
        {
            return [];
        }

        if (array.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidArgumentException($"process {name} must be an array of strings");
        }

        return [.. array.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String
            ? e.GetString()!
            : throw new InvalidArgumentException($"process {name} must be an array of strings"))];
    }

    /// <summary>
    /// Finds args[0] on the host: as given when it holds a '/', else on the spec's PATH, then the
    /// host's. The container's rootfs is not used.
    /// </summary>
    public string ResolveExecutable()
    {
        string name = Args[0];
        if (name.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(name) ? name : throw new FailedPreconditionException($"{name} does not exist on the host");
        }

        string? specPath = Env.FirstOrDefault(e => e.StartsWith("PATH=", StringComparison.Ordinal))?[5..];
        string? hostPath = Environment.GetEnvironmentVariable("PATH");
        foreach (string directory in $"{specPath}:{hostPath}".Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FailedPreconditionException($"executable \"{name}\" not found on the spec's or the host's PATH");
    }
}
