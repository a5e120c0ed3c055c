using PluggableShim.Abstractions;

namespace PluggableShim.Host.Tasks;

/// <summary>What the daemon knows of itself, for the task service.</summary>
internal sealed record ShimOptions
{
    public required string Namespace { get; init; }
    public required PluginInfo Plugin { get; init; }
    public TypedPayload? StartOptions { get; init; }
    public TimeSpan IoOpenTimeout { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan OutputDrainTimeout { get; init; } = TimeSpan.FromSeconds(5);
    public string Version { get; init; } = typeof(ShimOptions).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
}
