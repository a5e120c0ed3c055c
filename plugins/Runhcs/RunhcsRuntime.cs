using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;
using PluggableShim.Plugins.Runhcs.Internal;

namespace PluggableShim.Plugins.Runhcs;

/// <summary>
/// Creates runhcs containers: rewrites the bundle's config.json from the layer mount, starts the
/// debug log listeners the options ask for, and runs <c>runhcs create</c>.
/// </summary>
internal sealed class RunhcsRuntime(RunhcsSettings settings, ILoggerFactory loggerFactory) : IContainerRuntime
{
    private readonly ILogger _logger = loggerFactory.CreateLogger<RunhcsRuntime>();

    public async Task<IRuntimeContainer> CreateAsync(CreateContainerRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        RunhcsOptions options = RunhcsOptions.From(request.Options);
        string binary = settings.ResolveBinary();
        LayerRewriter.Result layers = LayerRewriter.Rewrite(request.Bundle, request.Rootfs, options);

        bool debug = options.Debug || settings.Debug;
        LogLevel minimum = RunhcsCli.LevelFromOptions(options.LogLevel, debug);
        var cli = new RunhcsCli(binary, settings, options, request.Bundle, request.Id, debug, _logger);
        LogForwarder? shimLog = null;
        LogForwarder? vmLog = null;
        RunhcsContainer? container = null;
        try
        {
            if (debug && options.DebugType == DebugType.NamedPipe)
            {
                shimLog = LogForwarder.Start("shim", request.Namespace, request.Id, settings.LogSocketDirectory, _logger, minimum);
                if (layers.Lcow || options.HyperVIsolation)
                {
                    vmLog = LogForwarder.Start("vm", request.Namespace, request.Id, settings.LogSocketDirectory, _logger, minimum);
                }
            }

            container = new RunhcsContainer(request.Id, request.Bundle, cli, shimLog, vmLog, _logger);
            await container.CreateAsync(cancellationToken).ConfigureAwait(false);
            RunhcsLog.Created(_logger, request.Id, ((RunhcsProcess)container.Init).ShimPid, layers.LayerFolders.Count,
                layers.Lcow, layers.Changed);
            return container;
        }
        catch
        {
            // runhcs removes a container whose create failed; the dispose covers a create cut short.
            if (container is not null)
            {
                await container.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                await DisposeQuietly(shimLog).ConfigureAwait(false);
                await DisposeQuietly(vmLog).ConfigureAwait(false);
            }

            throw;
        }
    }

    private static async Task DisposeQuietly(LogForwarder? forwarder)
    {
        if (forwarder is not null)
        {
            await forwarder.DisposeAsync().ConfigureAwait(false);
        }
    }
}
