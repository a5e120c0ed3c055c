using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;

namespace HostProcess;

/// <summary>Creates containers: reads the bundle's <c>config.json</c> and prepares its init process.</summary>
internal sealed partial class HostProcessRuntime(ILogger<HostProcessRuntime> logger) : IContainerRuntime
{
    public async Task<IRuntimeContainer> CreateAsync(CreateContainerRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Terminal)
        {
            throw new UnimplementedException("terminal");
        }

        string config = Path.Combine(request.Bundle, "config.json");
        using JsonDocument spec = ProcessSpec.ParseJson(await File.ReadAllTextAsync(config, cancellationToken).ConfigureAwait(false), config);
        if (spec.RootElement.ValueKind != JsonValueKind.Object || !spec.RootElement.TryGetProperty("process", out JsonElement process))
        {
            throw new InvalidArgumentException($"{config} has no process");
        }

        Created(logger, request.Id);
        return new Container(ProcessSpec.Parse(process));
    }

    [LoggerMessage(1, LogLevel.Information, "container {ContainerId} created")]
    private static partial void Created(ILogger logger, string containerId);
}

/// <summary>One container: its init process and its execs.</summary>
internal sealed class Container : IRuntimeContainer
{
    private readonly Lock _gate = new();
    private readonly List<ContainerProcess> _processes = []; // the execs; guarded by _gate

    public Container(ProcessStartInfo init)
    {
        Init = new ContainerProcess(init, All);
    }

    public IRuntimeProcess Init { get; }

    public Task<IRuntimeProcess> CreateExecAsync(CreateExecRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Terminal)
        {
            throw new UnimplementedException("terminal");
        }

        using JsonDocument spec = ProcessSpec.ParseJson(request.ProcessSpecJson, "the exec's process spec");
        var exec = new ContainerProcess(ProcessSpec.Parse(spec.RootElement), All);
        lock (_gate)
        {
            _processes.Add(exec);
        }

        return Task.FromResult<IRuntimeProcess>(exec);
    }

    public ValueTask ReleaseExecAsync(IRuntimeProcess exec, CancellationToken cancellationToken = default)
    {
        var process = (ContainerProcess)exec;
        lock (_gate)
        {
            _processes.Remove(process);
        }

        // The host calls this once the exec has exited (or never started) and its IO is closed: in a
        // long-lived pod daemon each exec (a probe, say) would otherwise keep its process handle.
        process.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Every process of the container, for Kill with all.</summary>
    public ContainerProcess[] All()
    {
        lock (_gate)
        {
            return [(ContainerProcess)Init, .. _processes];
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Nothing of a deleted container may outlive it: kill what is left, let each exit be
        // observed (the host may still await it), then release the process handles.
        ContainerProcess[] processes = All();
        foreach (ContainerProcess process in processes)
        {
            process.KillQuietly();
        }

        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        foreach (ContainerProcess process in processes)
        {
            try
            {
                await process.Exited.WaitAsync(bound.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // SIGKILLed but not yet reaped: its handle goes anyway.
            }

            process.Dispose();
        }
    }
}

/// <summary>The OCI process spec fields this plugin honours: args, env, cwd.</summary>
internal static class ProcessSpec
{
    /// <summary>Parses JSON the client sent: malformed JSON is bad input (InvalidArgument), not a failure of the plugin.</summary>
    public static JsonDocument ParseJson(string json, string what)
    {
        try
        {
            return JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new InvalidArgumentException($"{what} is not valid JSON: {ex.Message}", ex);
        }
    }

    public static ProcessStartInfo Parse(JsonElement process)
    {
        if (process.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidArgumentException("the process spec must be a JSON object");
        }

        if (!process.TryGetProperty("args", out JsonElement args) || args.ValueKind != JsonValueKind.Array || args.GetArrayLength() == 0
            || args.EnumerateArray().Any(a => a.ValueKind != JsonValueKind.String))
        {
            throw new InvalidArgumentException("the process spec has no args, or args that are not strings");
        }

        string[] argv = [.. args.EnumerateArray().Select(a => a.GetString() ?? "")];
        var info = new ProcessStartInfo(argv[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in argv[1..])
        {
            info.ArgumentList.Add(arg);
        }

        if (process.TryGetProperty("env", out JsonElement env) && env.ValueKind == JsonValueKind.Array)
        {
            info.Environment.Clear();
            foreach (string pair in env.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String).Select(e => e.GetString() ?? ""))
            {
                int equals = pair.IndexOf('=', StringComparison.Ordinal);
                if (equals > 0)
                {
                    info.Environment[pair[..equals]] = pair[(equals + 1)..];
                }
            }
        }

        if (process.TryGetProperty("cwd", out JsonElement cwd) && cwd.ValueKind == JsonValueKind.String
            && cwd.GetString() is { Length: > 0 } directory && Directory.Exists(directory))
        {
            info.WorkingDirectory = directory;
        }

        return info;
    }
}
