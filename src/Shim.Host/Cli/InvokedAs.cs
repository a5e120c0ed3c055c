namespace PluggableShim.Host.Cli;

/// <summary>
/// The name containerd executed. <see cref="Environment.ProcessPath"/> resolves symlinks and the
/// managed argv[0] is the .dll, so on Linux the process's own argv[0] is read from /proc.
/// </summary>
internal static class InvokedAs
{
    public static string Get()
    {
        if (OperatingSystem.IsLinux())
        {
            try
            {
                string cmdline = File.ReadAllText("/proc/self/cmdline");
                int end = cmdline.IndexOf('\0', StringComparison.Ordinal);
                string first = end >= 0 ? cmdline[..end] : cmdline;
                if (first.Length > 0 && Path.GetFileNameWithoutExtension(first) != "dotnet")
                {
                    return first;
                }
            }
            catch (IOException)
            {
                // Fall through to what the runtime knows.
            }
        }

        // Windows has copies, not symlinks: the executable's own path is the name containerd ran.
        if (OperatingSystem.IsWindows() && Environment.ProcessPath is { } executable)
        {
            return executable;
        }

        return Environment.GetCommandLineArgs()[0];
    }
}
