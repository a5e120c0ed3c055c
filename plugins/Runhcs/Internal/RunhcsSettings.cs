using System.Text.Json;
using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Runhcs.Internal;

/// <summary>
/// The plugin's section of the shim config file (<c>plugins.runhcs</c>). containerd's
/// <c>containerd.runhcs.v1.Options</c> has no field for the runhcs binary, so it lives here.
/// </summary>
internal sealed record RunhcsSettings
{
    /// <summary>runhcs itself: absolute, or relative to the shim binary's folder; null to search.</summary>
    public string? RunhcsPath { get; init; }

    /// <summary>The compute system owner runhcs records (<c>--owner</c>).</summary>
    public string Owner { get; init; } = "pluggableshim";

    /// <summary>The registry key runhcs keeps its state under (<c>--root</c>), unless the options name one.</summary>
    public string? Root { get; init; }

    /// <summary>Forward runhcs's debug logs even when the runtime options do not ask for it.</summary>
    public bool Debug { get; init; }

    /// <summary>Bound on every runhcs call other than create.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Bound on <c>runhcs create</c> (a Hyper-V or LCOW create boots a utility VM).</summary>
    public TimeSpan CreateTimeout { get; init; } = TimeSpan.FromMinutes(4);

    /// <summary>How long Start waits for the container to leave <c>created</c>.</summary>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Off Windows only: the folder for the log sockets handed to runhcs (default: the temp folder).</summary>
    public string? LogSocketDirectory { get; init; }

    public static RunhcsSettings Parse(string? json)
    {
        var settings = new RunhcsSettings();
        if (string.IsNullOrWhiteSpace(json))
        {
            return settings;
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions
            {
                CommentHandling = JsonCommentHandling.Skip,
                AllowTrailingCommas = true,
            });
        }
        catch (JsonException ex)
        {
            throw new InvalidArgumentException($"runhcs settings are not valid JSON: {ex.Message}", ex);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Null)
            {
                return settings;
            }

            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidArgumentException("runhcs settings must be a JSON object");
            }

            foreach (JsonProperty property in root.EnumerateObject())
            {
                settings = property.Name switch
                {
                    "runhcsPath" => settings with { RunhcsPath = String(property) },
                    "owner" => settings with { Owner = String(property) ?? settings.Owner },
                    "root" => settings with { Root = String(property) },
                    "debug" => settings with { Debug = Bool(property) },
                    "commandTimeoutSeconds" => settings with { CommandTimeout = Seconds(property) },
                    "createTimeoutSeconds" => settings with { CreateTimeout = Seconds(property) },
                    "startTimeoutSeconds" => settings with { StartTimeout = Seconds(property) },
                    "logSocketDirectory" => settings with { LogSocketDirectory = String(property) },
                    _ => throw new InvalidArgumentException(
                        $"runhcs settings: unknown setting \"{property.Name}\" (known: runhcsPath, owner, root, debug, " +
                        "commandTimeoutSeconds, createTimeoutSeconds, startTimeoutSeconds, logSocketDirectory)"),
                };
            }
        }

        return settings;
    }

    /// <summary>
    /// The runhcs binary: the configured path, else <c>runhcs.exe</c> (<c>runhcs</c> off Windows)
    /// on PATH, else beside the shim. Resolved per container so that installing runhcs needs no restart.
    /// </summary>
    public string ResolveBinary()
    {
        string name = OperatingSystem.IsWindows() ? "runhcs.exe" : "runhcs";
        if (!string.IsNullOrEmpty(RunhcsPath))
        {
            string configured = Path.GetFullPath(RunhcsPath, AppContext.BaseDirectory);
            return File.Exists(configured)
                ? configured
                : throw new FailedPreconditionException($"runhcs not found at {configured} (plugins.runhcs.runhcsPath)");
        }

        char separator = OperatingSystem.IsWindows() ? ';' : ':';
        string path = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        foreach (string directory in path.Split(separator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            string candidate = Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        string beside = Path.Combine(AppContext.BaseDirectory, name);
        return File.Exists(beside)
            ? beside
            : throw new FailedPreconditionException(
                $"{name} not found on PATH or beside the shim ({AppContext.BaseDirectory}); " +
                "install it there or set plugins.runhcs.runhcsPath in the shim config");
    }

    private static string? String(JsonProperty property) => property.Value.ValueKind switch
    {
        JsonValueKind.String => property.Value.GetString(),
        JsonValueKind.Null => null,
        _ => throw new InvalidArgumentException($"runhcs settings: \"{property.Name}\" must be a string"),
    };

    private static bool Bool(JsonProperty property) => property.Value.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw new InvalidArgumentException($"runhcs settings: \"{property.Name}\" must be true or false"),
    };

    private static TimeSpan Seconds(JsonProperty property) =>
        property.Value.ValueKind == JsonValueKind.Number && property.Value.TryGetDouble(out double seconds)
        && seconds > 0 && seconds <= 3600
            ? TimeSpan.FromSeconds(seconds)
            : throw new InvalidArgumentException($"runhcs settings: \"{property.Name}\" must be a number of seconds in (0, 3600]");
}
