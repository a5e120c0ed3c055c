using System.Text.Json.Nodes;
using PluggableShim.Abstractions;
using PluggableShim.Contracts.Task;
using Task = System.Threading.Tasks.Task;

namespace PluggableShim.Conformance;

/// <summary>
/// What the kit runs against: the published host, the plugin, and how to make a bundle whose
/// process behaves as a test needs. A plugin author subclasses this (with a public parameterless
/// constructor) and names the subclass in <see cref="ShimConformance{TTarget}"/>.
/// </summary>
public abstract class ConformanceTarget
{
    /// <summary>The variable naming the published host folder, when <see cref="HostDirectoryAsync"/> is not overridden.</summary>
    public const string HostDirectoryVariable = "PLUGGABLESHIM_SHIM_DIR";

    /// <summary>The plugin's name, as in <c>containerd-shim-NAME-v1</c>; the kit installs the host under that name.</summary>
    public abstract string PluginName { get; }

    /// <summary>
    /// The optional operations the plugin declares (its <see cref="PluginInfo.Capabilities"/>): each is
    /// tested, and each one left out must answer Unimplemented.
    /// </summary>
    public abstract TaskCapabilities Capabilities { get; }

    /// <summary>
    /// A plugin folder (what <c>dotnet publish</c> of the plugin made) that the kit copies into a
    /// plugins directory of its own, as an operator installs it. Null: the plugin is already in the
    /// host's <c>plugins/</c> folder.
    /// </summary>
    public virtual string? PluginDirectory => null;

    /// <summary>
    /// A folder the kit made for this installation and removes with it, set before any other member
    /// is read: settings and environment may point into it (state folders, sockets).
    /// </summary>
    public string WorkDirectory { get; internal set; } = "";

    /// <summary>The plugin's settings (raw JSON), written as <c>plugins.NAME</c> of the shim config file; null for none.</summary>
    public virtual string? PluginSettingsJson => null;

    /// <summary>
    /// The form of <c>start</c>'s answer, written as <c>startOutput</c> of the shim config file:
    /// null for the host's default (a plain ttrpc address), or <c>json-v2-ttrpc</c>,
    /// <c>json-v2-grpc</c>, <c>json-v3-ttrpc</c>, <c>json-v3-grpc</c>. The kit dials whatever is printed.
    /// </summary>
    public virtual string? StartOutput => null;

    /// <summary>Extra environment for <c>start</c> (and so for the daemon it spawns).</summary>
    public virtual IReadOnlyDictionary<string, string> StartEnvironment { get; } = new Dictionary<string, string>();

    /// <summary>Whether the pids the plugin reports are host pids (so the kit can check that none outlives its task).</summary>
    public virtual bool ReportsHostPids => true;

    /// <summary>How long the kit waits for anything the shim should do soon.</summary>
    public virtual TimeSpan Timeout => TimeSpan.FromSeconds(20);

    /// <summary>
    /// The folder that <c>dotnet publish src/Shim.Host</c> made (holding <c>containerd-shim-pluggable-v1</c>).
    /// By default <c>$PLUGGABLESHIM_SHIM_DIR</c>.
    /// </summary>
    public virtual Task<string> HostDirectoryAsync(CancellationToken cancellationToken) =>
        Environment.GetEnvironmentVariable(HostDirectoryVariable) is { Length: > 0 } directory
            ? Task.FromResult(directory)
            : throw new InvalidOperationException(
                $"set {HostDirectoryVariable} to the folder `dotnet publish src/Shim.Host -c Release -o DIR` made, " +
                "or override HostDirectoryAsync");

    /// <summary>
    /// The OCI <c>Process</c> (as JSON) that does what <paramref name="behavior"/> says. By default a
    /// POSIX shell script (<c>/bin/sh -c</c>) with a plain PATH, for plugins that run host-like processes.
    /// </summary>
    public virtual JsonObject ProcessSpec(ProcessBehavior behavior)
    {
        ArgumentNullException.ThrowIfNull(behavior);
        return new JsonObject
        {
            ["args"] = new JsonArray("/bin/sh", "-c", ShellScript.For(behavior)),
            ["env"] = new JsonArray("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            ["cwd"] = "/",
        };
    }

    /// <summary>
    /// Writes the bundle's <c>config.json</c> (and whatever else the plugin needs in it) for a
    /// container whose init process is <paramref name="process"/>. By default a minimal OCI spec with
    /// an empty <c>rootfs/</c>.
    /// </summary>
    public virtual async Task WriteBundleAsync(
        string bundle,
        JsonObject process,
        IReadOnlyDictionary<string, string> annotations,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(annotations);
        Directory.CreateDirectory(Path.Combine(bundle, "rootfs"));
        var spec = new JsonObject
        {
            ["ociVersion"] = "1.0.2",
            ["process"] = process,
            ["root"] = new JsonObject { ["path"] = "rootfs" },
            ["annotations"] = new JsonObject([.. annotations.Select(a => KeyValuePair.Create(a.Key, (JsonNode?)a.Value))]),
        };
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), spec.ToJsonString(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Adds what the plugin needs to a Create (rootfs mounts, options) before the kit sends it.</summary>
    public virtual void PrepareCreate(CreateTaskRequest request)
    {
    }
}
