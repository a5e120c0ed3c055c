using Microsoft.Extensions.DependencyInjection;

namespace PluggableShim.Abstractions;

/// <summary>
/// The entry point of a runtime plugin. The host finds the one public, non-abstract
/// implementation in the plugin's main assembly, creates it with its parameterless
/// constructor, and calls <see cref="ConfigureServices"/> once.
/// </summary>
public interface IShimPlugin
{
    /// <summary>What the plugin is and what it supports.</summary>
    PluginInfo Info { get; }

    /// <summary>
    /// Registers the plugin's services. It must register exactly one
    /// <see cref="IContainerRuntime"/>; everything else is its own business.
    /// </summary>
    void ConfigureServices(IServiceCollection services, PluginContext context);
}

/// <summary>What the host tells a plugin when it is being registered.</summary>
/// <param name="PluginDirectory">The folder the plugin was loaded from.</param>
/// <param name="Settings">The plugin's section of the shim configuration file, as raw JSON, or null.</param>
public sealed record PluginContext(string PluginDirectory, string? Settings)
{
    /// <summary>Whether containerd started the shim with <c>-debug</c>: the plugin may log more.</summary>
    public bool Debug { get; init; }
}

/// <summary>A plugin's identity and capabilities.</summary>
/// <param name="Name">The runtime name, as in <c>containerd-shim-NAME-v1</c>: lower-case letters and digits.</param>
/// <param name="Version">The plugin's own semantic version.</param>
/// <param name="Description">One line for logs and error messages.</param>
public sealed record PluginInfo(string Name, string Version, string Description)
{
    /// <summary>Operating systems the plugin runs on, as <see cref="OperatingSystem.IsOSPlatform"/> names.</summary>
    public IReadOnlyList<string> OperatingSystems { get; init; } = ["linux", "windows", "macos"];

    /// <summary>The optional Task API operations it implements; the others answer Unimplemented.</summary>
    public TaskCapabilities Capabilities { get; init; }
}

/// <summary>Optional Task API operations. Create, Start, Kill, Wait, Delete and State are always required.</summary>
[Flags]
public enum TaskCapabilities
{
    /// <summary>Only the required operations.</summary>
    None = 0,

    /// <summary>Exec: extra processes in a container.</summary>
    Exec = 1 << 0,

    /// <summary>Pause and Resume.</summary>
    Pause = 1 << 1,

    /// <summary>Pids: list the container's processes.</summary>
    Pids = 1 << 2,

    /// <summary>Stats: resource usage.</summary>
    Stats = 1 << 3,

    /// <summary>Update: change resources.</summary>
    Update = 1 << 4,

    /// <summary>Checkpoint.</summary>
    Checkpoint = 1 << 5,

    /// <summary>Terminals (terminal=true) and ResizePty.</summary>
    Terminal = 1 << 6,
}
