using System.Text.Json.Nodes;

namespace PluggableShim.Conformance;

/// <summary>
/// The host installed for one test class, as an operator installs it: the launcher linked as
/// <c>containerd-shim-NAME-v1</c> (so the runtime name selects the plugin), a shim config file,
/// and, when the target gives a plugin folder, a plugins directory holding a copy of it.
/// </summary>
public class ConformanceInstallation : IAsyncLifetime
{
    /// <summary>The host's launcher, as containerd finds it.</summary>
    public const string HostBinary = "containerd-shim-pluggable-v1";

    private readonly string _work = Directory.CreateTempSubdirectory("psh-conf-").FullName;

    /// <summary>Creates the installation for <paramref name="target"/>.</summary>
    public ConformanceInstallation(ConformanceTarget target)
    {
        Target = target ?? throw new ArgumentNullException(nameof(target));
        Target.WorkDirectory = Directory.CreateDirectory(Path.Combine(_work, "target")).FullName;
    }

    /// <summary>What is being tested.</summary>
    public ConformanceTarget Target { get; }

    /// <summary>The shim as containerd runs it: <c>containerd-shim-NAME-v1</c>, a symlink to the host's launcher.</summary>
    public string Shim { get; private set; } = "";

    /// <summary>The shim config file (<c>$PLUGGABLESHIM_CONFIG</c> of every start).</summary>
    public string ConfigPath => Path.Combine(_work, "pluggableshim.json");

    /// <summary>A folder for bundles, FIFOs and the events sockets, removed with the installation.</summary>
    public string WorkDirectory => _work;

    /// <summary>Why the kit cannot run here, or null.</summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "the shim host runs on Linux only";
        }

        // The shim's sockets live in /run/containerd/s, as containerd's own shims' do. The effective
        // uid decides (geteuid() == 0), not the user name: sudo, setuid and renamed uid 0 accounts differ.
        return Environment.IsPrivilegedProcess ? null : "the shim host needs root (its sockets are in /run/containerd/s)";
    }

    /// <inheritdoc />
    public async ValueTask InitializeAsync()
    {
        if (Unavailable() is not null)
        {
            return;
        }

        string host = await Target.HostDirectoryAsync(CancellationToken.None).ConfigureAwait(false);
        string launcher = Path.GetFullPath(Path.Combine(host, HostBinary));
        if (!File.Exists(launcher))
        {
            throw new InvalidOperationException($"{host} holds no {HostBinary}: not a published PluggableShim host");
        }

        string bin = Directory.CreateDirectory(Path.Combine(_work, "bin")).FullName;
        Shim = Path.Combine(bin, $"containerd-shim-{Target.PluginName}-v1");
        File.CreateSymbolicLink(Shim, launcher);

        var config = new JsonObject();
        if (Target.PluginDirectory is { } pluginDirectory)
        {
            if (!Directory.Exists(pluginDirectory))
            {
                throw new InvalidOperationException($"the plugin folder {pluginDirectory} does not exist");
            }

            string plugins = Path.Combine(_work, "plugins");
            CopyDirectory(pluginDirectory, Path.Combine(plugins, Target.PluginName));
            config["pluginsDirectory"] = plugins;
        }

        if (Target.PluginSettingsJson is { } settings)
        {
            config["plugins"] = new JsonObject { [Target.PluginName] = JsonNode.Parse(settings) };
        }

        if (Target.StartOutput is { } startOutput)
        {
            config["startOutput"] = startOutput;
        }

        await File.WriteAllTextAsync(ConfigPath, config.ToJsonString()).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        try
        {
            Directory.Delete(_work, recursive: true);
        }
        catch (IOException)
        {
            // A shim that outlived its test may still hold a file here; the temp folder is cleaned eventually.
        }

        return ValueTask.CompletedTask;
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.EnumerateFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        }

        foreach (string directory in Directory.EnumerateDirectories(from))
        {
            CopyDirectory(directory, Path.Combine(to, Path.GetFileName(directory)));
        }
    }
}

/// <summary>The installation for <typeparamref name="TTarget"/>: xunit's class fixture of <see cref="ShimConformance{TTarget}"/>.</summary>
/// <typeparam name="TTarget">The target.</typeparam>
public sealed class ConformanceInstallation<TTarget>() : ConformanceInstallation(new TTarget())
    where TTarget : ConformanceTarget, new();
