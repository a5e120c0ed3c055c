using System.Text.Json;
using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;
using PluggableShim.Plugins.Fake.Internal;

namespace PluggableShim.Plugins.Fake;

/// <summary>Creates Fake containers from an OCI bundle's <c>config.json</c>.</summary>
internal sealed class FakeRuntime(ILoggerFactory loggerFactory) : IContainerRuntime
{
    public Task<IRuntimeContainer> CreateAsync(CreateContainerRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        string configPath = Path.Combine(request.Bundle, "config.json");
        if (!File.Exists(configPath))
        {
            throw new InvalidArgumentException($"bundle {request.Bundle} has no config.json");
        }

        ProcessSpec spec;
        try
        {
            using FileStream stream = File.OpenRead(configPath);
            using JsonDocument document = JsonDocument.Parse(stream);
            if (!document.RootElement.TryGetProperty("process", out JsonElement process))
            {
                throw new InvalidArgumentException($"{configPath} has no process to run");
            }

            spec = ProcessSpec.Parse(process);
        }
        catch (JsonException ex)
        {
            throw new InvalidArgumentException($"{configPath} is not valid JSON: {ex.Message}", ex);
        }

        ILogger logger = loggerFactory.CreateLogger<FakeRuntime>();
        return Task.FromResult<IRuntimeContainer>(new FakeContainer(request.Id, spec, logger));
    }
}
