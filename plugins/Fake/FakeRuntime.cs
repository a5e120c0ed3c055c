using System.Text.Json;
using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;
using PluggableShim.Plugins.Fake.Internal;
using PluggableShim.Plugins.Fake.Internal.Faults;
using PluggableShim.Plugins.Fake.Internal.Metrics;

namespace PluggableShim.Plugins.Fake;

/// <summary>
/// Creates Fake containers from an OCI bundle's <c>config.json</c>: its process, its
/// <c>linux.resources</c> (recorded, not enforced) and its fault-injection annotations.
/// </summary>
internal sealed class FakeRuntime(ILoggerFactory loggerFactory, TimeProvider timeProvider) : IContainerRuntime
{
    public async Task<IRuntimeContainer> CreateAsync(CreateContainerRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ILogger logger = loggerFactory.CreateLogger<FakeRuntime>();
        BundleConfig config = BundleConfig.Read(request.Bundle);

        ProcessFaults faults = config.Faults.Init;
        if (!config.Faults.IsEmpty)
        {
            FakeLog.FaultsArmed(logger, request.Id, config.FaultAnnotations);
        }

        if (faults.CreateDelay is { } delay)
        {
            FakeLog.Delaying(logger, request.Id, "create", delay.TotalMilliseconds);
            await Task.Delay(delay, timeProvider, cancellationToken).ConfigureAwait(false);
        }

        if (faults.CreateError is { } error)
        {
            FakeLog.Failing(logger, request.Id, "create", error.Annotation);
            throw error.ToException("create");
        }

        return new FakeContainer(request.Id, config, request.Events, timeProvider, logger);
    }
}

/// <summary>What the Fake plugin reads from a bundle's <c>config.json</c>.</summary>
internal sealed record BundleConfig(ProcessSpec Process, FaultPlan Faults, ResourceLimits Resources, string FaultAnnotations)
{
    public static BundleConfig Read(string bundle)
    {
        string configPath = Path.Combine(bundle, "config.json");
        if (!File.Exists(configPath))
        {
            throw new InvalidArgumentException($"bundle {bundle} has no config.json");
        }

        try
        {
            using FileStream stream = File.OpenRead(configPath);
            using JsonDocument document = JsonDocument.Parse(stream);
            return Parse(document.RootElement, configPath);
        }
        catch (JsonException ex)
        {
            throw new InvalidArgumentException($"{configPath} is not valid JSON: {ex.Message}", ex);
        }
    }

    public static BundleConfig Parse(JsonElement root, string configPath)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidArgumentException($"{configPath} is not a JSON object");
        }

        if (!root.TryGetProperty("process", out JsonElement process))
        {
            throw new InvalidArgumentException($"{configPath} has no process to run");
        }

        var annotations = new Dictionary<string, string>(StringComparer.Ordinal);
        if (root.TryGetProperty("annotations", out JsonElement map) && map.ValueKind == JsonValueKind.Object)
        {
            foreach (JsonProperty annotation in map.EnumerateObject())
            {
                annotations[annotation.Name] = annotation.Value.ValueKind == JsonValueKind.String
                    ? annotation.Value.GetString()!
                    : throw new InvalidArgumentException($"{configPath}: annotation {annotation.Name} must be a string");
            }
        }

        ResourceLimits resources = root.TryGetProperty("linux", out JsonElement linux)
            && linux.ValueKind == JsonValueKind.Object
            && linux.TryGetProperty("resources", out JsonElement limits)
                ? ResourceLimits.Parse(limits, $"{configPath}: linux.resources")
                : ResourceLimits.None;

        string faultNames = string.Join(' ', annotations.Keys
            .Where(k => k.StartsWith(FaultPlan.Prefix, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal));
        return new BundleConfig(ProcessSpec.Parse(process), FaultPlan.Parse(annotations), resources, faultNames);
    }
}
