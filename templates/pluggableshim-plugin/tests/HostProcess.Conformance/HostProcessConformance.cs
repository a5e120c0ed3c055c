using HostProcess;
using PluggableShim.Abstractions;
using PluggableShim.Conformance;

namespace HostProcess.Conformance;

/// <summary>
/// The plugin as the kit runs it: the published host from <c>$PLUGGABLESHIM_SHIM_DIR</c>, this
/// plugin's published folder installed into a plugins directory of the kit's own, bundles whose
/// process is a shell script (the default, since this plugin runs host processes).
/// </summary>
public sealed class HostProcessTarget : ConformanceTarget
{
    public override string PluginName => "hostprocess";

    public override TaskCapabilities Capabilities => new HostProcessPlugin().Info.Capabilities;

    public override string? PluginDirectory =>
        Environment.GetEnvironmentVariable("PLUGGABLESHIM_PLUGIN_DIR") is { Length: > 0 } given
            ? given
            : Path.Combine(AppContext.BaseDirectory, "plugin");
}

/// <summary>The whole kit.</summary>
public sealed class HostProcessConformance(ConformanceInstallation<HostProcessTarget> installation)
    : ShimConformance<HostProcessTarget>(installation);
