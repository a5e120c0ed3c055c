using System.Text.Json;
using PluggableShim.Abstractions;
using PluggableShim.Conformance;
using PluggableShim.Contracts.Task;
using PluggableShim.Contracts.Types;
using PluggableShim.Plugins.Runhcs;
using PluggableShim.Runhcs.Tests.Support;
using PluggableShim.Testing;

namespace PluggableShim.Runhcs.Tests.Conformance;

/// <summary>
/// The Runhcs plugin as published in the host's plugins folder, driving the stand-in runhcs
/// (host processes, so the kit's shell bundles work); each Create carries a windows-layer mount,
/// as containerd's snapshotter gives one on Windows.
/// </summary>
public sealed class RunhcsTarget : ConformanceTarget
{
    public override string PluginName => "runhcs";

    public override TaskCapabilities Capabilities => new RunhcsPlugin().Info.Capabilities;

    public override string? PluginSettingsJson => JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["runhcsPath"] = RunhcsShim.StandinPath(),
        ["logSocketDirectory"] = WorkDirectory,
        ["startTimeoutSeconds"] = 10,
    });

    public override IReadOnlyDictionary<string, string> StartEnvironment =>
        new Dictionary<string, string> { ["RUNHCS_STANDIN_STATE"] = Path.Combine(WorkDirectory, "standin-state") };

    public override Task<string> HostDirectoryAsync(CancellationToken cancellationToken) => ShimBuild.DirectoryAsync(cancellationToken);

    public override void PrepareCreate(CreateTaskRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Rootfs.Add(new Mount
        {
            Type = "windows-layer",
            Source = @"C:\layers\scratch",
            Options = { "parentLayerPaths=" + JsonSerializer.Serialize(new[] { @"C:\layers\base" }) },
        });
    }
}

public sealed class RunhcsConformance(ConformanceInstallation<RunhcsTarget> installation) : ShimConformance<RunhcsTarget>(installation);
