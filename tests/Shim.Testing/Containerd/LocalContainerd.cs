using System.Collections.Concurrent;
using System.Diagnostics;

namespace PluggableShim.Testing.Containerd;

/// <summary>
/// Debian's containerd, started for the tests with a private root, state and sockets in a
/// temporary folder (the CRI plugin off), and stopped afterwards with everything it left.
/// Needs root; <see cref="SkipUnlessAvailable"/> says so visibly when it is missing.
/// </summary>
public sealed class LocalContainerd : IContainerdHost
{
    /// <summary>Set (CI does) to make a missing containerd fail the tests instead of skipping them.</summary>
    public const string RequireVariable = "PLUGGABLESHIM_REQUIRE_CONTAINERD";

    private static readonly TimeSpan CtrTimeout = TimeSpan.FromSeconds(60);
    private readonly string _directory;
    private readonly Process _containerd;
    private readonly ConcurrentDictionary<string, Lazy<Task<string>>> _imported = new();
    private readonly Lazy<Task<string>> _imageArchive;

    private LocalContainerd(string directory, Process containerd, EventRecorder events)
    {
        _directory = directory;
        _containerd = containerd;
        Events = events;
        _imageArchive = new(() => BuildImageArchiveAsync(Path.Combine(_directory, "busybox.tar")));
    }

    public const string ImageReference = "docker.io/library/busybox:pluggableshim";

    public string Address => Path.Combine(_directory, "containerd.sock");

    public string TtrpcAddress => Address + ".ttrpc";

    public string StateDirectory => Path.Combine(_directory, "state");

    public EventRecorder Events { get; }

    /// <summary>containerd's own log, for failure messages.</summary>
    public string LogPath => Path.Combine(_directory, "containerd.log");

    /// <summary>Why a local containerd cannot run here, or null when it can.</summary>
    public static string? Unavailable()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "containerd tests run on Linux only";
        }

        if (!Environment.IsPrivilegedProcess)
        {
            return "containerd tests need root";
        }

        foreach (string tool in new[] { "containerd", "ctr", "busybox" })
        {
            if (FindOnPath(tool) is null)
            {
                return $"containerd tests need `{tool}` (apt-get install containerd busybox-static)";
            }
        }

        return null;
    }

    /// <summary>Skips the calling test, visibly, when containerd cannot run; fails instead under CI's requirement.</summary>
    public static void SkipUnlessAvailable()
    {
        string? reason = Unavailable();
        if (reason is null)
        {
            return;
        }

        if (Environment.GetEnvironmentVariable(RequireVariable) is { Length: > 0 })
        {
            throw new InvalidOperationException($"{RequireVariable} is set but: {reason}");
        }

        Assert.Skip(reason);
    }

    /// <summary>Starts containerd; <paramref name="shimDirectory"/> goes first on its PATH, where it finds shims by name.</summary>
    public static async Task<LocalContainerd> StartAsync(string? shimDirectory = null, CancellationToken cancellationToken = default)
    {
        string? reason = Unavailable();
        if (reason is not null)
        {
            throw new InvalidOperationException(reason);
        }

        // Short: the sockets inside must stay under the 108-byte limit of a Unix socket path.
        string directory = Directory.CreateTempSubdirectory("psh-cd-").FullName;
        string config = Path.Combine(directory, "config.toml");
        await File.WriteAllTextAsync(config, $"""
            version = 2
            root = "{directory}/root"
            state = "{directory}/state"
            disabled_plugins = ["io.containerd.grpc.v1.cri"]
            [grpc]
              address = "{directory}/containerd.sock"
            [ttrpc]
              address = "{directory}/containerd.sock.ttrpc"
            """, cancellationToken).ConfigureAwait(false);

        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        if (shimDirectory is not null)
        {
            info.Environment["PATH"] = shimDirectory + ":" + Environment.GetEnvironmentVariable("PATH");
        }

        info.ArgumentList.Add("-c");
        info.ArgumentList.Add($"exec containerd --config '{config}' >'{directory}/containerd.log' 2>&1");
        Process containerd = Process.Start(info) ?? throw new InvalidOperationException("cannot start containerd");
        string address = Path.Combine(directory, "containerd.sock");
        try
        {
            await WaitServingAsync(containerd, address, directory, cancellationToken).ConfigureAwait(false);
            var host = new LocalContainerd(directory, containerd, EventRecorder.Start(address));
            await host.WaitSubscribedAsync(cancellationToken).ConfigureAwait(false);
            return host;
        }
        catch
        {
            Stop(containerd);
            throw;
        }
    }

    public async Task<CommandResult> CtrAsync(
        string ns,
        IEnumerable<string> arguments,
        TimeSpan? timeout = null,
        string? stdin = null,
        CancellationToken cancellationToken = default) =>
        await ProcessRunner.RunAsync(
                "ctr",
                ["--address", Address, "--namespace", ns, .. arguments],
                timeout ?? CtrTimeout,
                stdin,
                cancellationToken: cancellationToken)
            .ConfigureAwait(false);

    public Task<string> ImportBusyboxAsync(string ns, CancellationToken cancellationToken = default) =>
        _imported.GetOrAdd(ns, n => new Lazy<Task<string>>(() => ImportCoreAsync(n))).Value;

    public string BundleOf(string ns, string id) =>
        Path.Combine(StateDirectory, "io.containerd.runtime.v2.task", ns, id);

    public async ValueTask DisposeAsync()
    {
        Events.Dispose();
        Stop(_containerd);
        _containerd.Dispose();
        await Task.Yield();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A shim that outlived the test may still hold its bundle; the leak tests report that.
        }
    }

    private async Task<string> ImportCoreAsync(string ns)
    {
        string archive = await _imageArchive.Value.ConfigureAwait(false);
        (await CtrAsync(ns, ["image", "import", archive]).ConfigureAwait(false)).EnsureSuccess();
        return ImageReference;
    }

    private static async Task<string> BuildImageArchiveAsync(string output)
    {
        (await ProcessRunner.RunAsync(
                "bash", [Repository.PathOf("scripts/busybox-image.sh"), output, ImageReference], TimeSpan.FromMinutes(1))
            .ConfigureAwait(false)).EnsureSuccess();
        return output;
    }

    private async Task WaitSubscribedAsync(CancellationToken cancellationToken)
    {
        // ctr events has no "subscribed" signal: emit events until one comes back.
        for (int attempt = 0; attempt < 100; attempt++)
        {
            string probe = $"probe-{attempt}";
            await CtrAsync(probe, ["namespaces", "create", probe], cancellationToken: cancellationToken).ConfigureAwait(false);
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            if (Events.All.Any(e => e.Topic == "/namespaces/create"))
            {
                return;
            }
        }

        throw new TimeoutException("ctr events never reported an event");
    }

    private static async Task WaitServingAsync(Process containerd, string address, string directory, CancellationToken cancellationToken)
    {
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (containerd.HasExited)
            {
                throw new InvalidOperationException(
                    $"containerd exited {containerd.ExitCode}: {await File.ReadAllTextAsync(Path.Combine(directory, "containerd.log"), cancellationToken).ConfigureAwait(false)}");
            }

            if (File.Exists(address))
            {
                CommandResult version = await ProcessRunner.RunAsync(
                    "ctr", ["--address", address, "version"], TimeSpan.FromSeconds(10), cancellationToken: cancellationToken).ConfigureAwait(false);
                if (version.ExitCode == 0)
                {
                    return;
                }
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }

        throw new TimeoutException("containerd did not serve within 30 s");
    }

    private static void Stop(Process containerd)
    {
        if (containerd.HasExited)
        {
            return;
        }

        // SIGTERM first so that containerd shuts its plugins down; then the hard way.
        _ = Posix.Kill(containerd.Id, 15);
        if (!containerd.WaitForExit(10_000))
        {
            containerd.Kill();
            containerd.WaitForExit(5_000);
        }
    }

    private static string? FindOnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin")
        .Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, tool))
        .FirstOrDefault(File.Exists);
}
