namespace PluggableShim.Testing;

/// <summary>Paths inside this repository, found from the test assembly's location.</summary>
public static class Repository
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    /// <summary>The folder that holds <c>PluggableShim.slnx</c>.</summary>
    public static string Root => s_root.Value;

    public static string PathOf(string relative) => Path.Combine(Root, relative);

    private static string FindRoot()
    {
        for (string? dir = AppContext.BaseDirectory; dir is not null; dir = Path.GetDirectoryName(dir))
        {
            if (File.Exists(Path.Combine(dir, "PluggableShim.slnx")))
            {
                return dir;
            }
        }

        throw new InvalidOperationException($"no PluggableShim.slnx above {AppContext.BaseDirectory}");
    }
}
