namespace PluggableShim.Testing;

/// <summary>
/// The published shim, as an operator installs it: <c>containerd-shim-pluggable-v1</c> with its
/// plugins folder, plus a <c>containerd-shim-fake-v1</c> symlink. Taken from
/// <c>$PLUGGABLESHIM_SHIM_DIR</c> when set (CI publishes once), else published here, once per
/// test process.
/// </summary>
public static class ShimBuild
{
    public const string DirectoryVariable = "PLUGGABLESHIM_SHIM_DIR";
    public const string HostBinary = "containerd-shim-pluggable-v1";

    private static readonly SemaphoreSlim s_gate = new(1, 1);
    private static string? s_directory;

    /// <summary>The folder holding the published host, publishing it first if needed.</summary>
    public static async Task<string> DirectoryAsync(CancellationToken cancellationToken = default)
    {
        await s_gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            s_directory ??= await LocateOrPublishAsync(cancellationToken).ConfigureAwait(false);
            return s_directory;
        }
        finally
        {
            s_gate.Release();
        }
    }

    /// <summary>The path of the shim installed under <c>containerd-shim-NAME-v1</c> (a symlink to the host).</summary>
    public static async Task<string> InstalledAsAsync(string name, CancellationToken cancellationToken = default)
    {
        string directory = await DirectoryAsync(cancellationToken).ConfigureAwait(false);
        string link = Path.Combine(directory, $"containerd-shim-{name}-v1");
        if (name != "pluggable" && !File.Exists(link))
        {
            try
            {
                File.CreateSymbolicLink(link, HostBinary);
            }
            catch (IOException) when (File.Exists(link))
            {
                // Another test process made it first.
            }
        }

        return link;
    }

    private static async Task<string> LocateOrPublishAsync(CancellationToken cancellationToken)
    {
        string? given = Environment.GetEnvironmentVariable(DirectoryVariable);
        if (!string.IsNullOrEmpty(given))
        {
            if (!File.Exists(Path.Combine(given, HostBinary)))
            {
                throw new InvalidOperationException($"{DirectoryVariable}={given} holds no {HostBinary}");
            }

            return given;
        }

        string output = Directory.CreateTempSubdirectory("pluggableshim-publish-").FullName;
        CommandResult published = await ProcessRunner.RunAsync(
                "dotnet",
                ["publish", Repository.PathOf("src/Shim.Host/Shim.Host.csproj"), "-c", "Release", "-o", output, "--nologo"],
                TimeSpan.FromMinutes(5),
                cancellationToken: cancellationToken)
            .ConfigureAwait(false);
        published.EnsureSuccess();
        if (!File.Exists(Path.Combine(output, HostBinary)))
        {
            throw new InvalidOperationException($"dotnet publish left no {HostBinary} in {output}");
        }

        return output;
    }
}
