using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace PluggableShim.Host.Cli;

/// <summary>Where a shim listens, by containerd's convention, and whether something answers there.</summary>
internal static class ShimSocket
{
    /// <summary>The folder containerd's shims put their sockets in (fixed in containerd 1.6).</summary>
    public const string SocketDirectory = "/run/containerd/s";

    /// <summary>
    /// The socket path for a shim serving <paramref name="groupId"/>: the hex SHA-256 of
    /// containerd's address, namespace and id joined as a path, the formula <c>ctr shim</c> uses too.
    /// </summary>
    public static string PathFor(string containerdAddress, string ns, string groupId)
    {
        string joined = JoinLikeGo(containerdAddress, ns, groupId);
        byte[] hash = SHA256.HashData(Encoding.UTF8.GetBytes(joined));
        return SocketDirectory + "/" + Convert.ToHexStringLower(hash);
    }

    public static bool Answers(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }

        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    // Go's filepath.Join: join with '/', then clean (collapse '//' and drop '.' elements).
    private static string JoinLikeGo(params string[] parts)
    {
        string joined = string.Join('/', parts.Where(p => p.Length > 0));
        bool rooted = joined.StartsWith('/');
        var kept = new List<string>();
        foreach (string element in joined.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (element == ".")
            {
                continue;
            }

            if (element == ".." && kept.Count > 0 && kept[^1] != "..")
            {
                kept.RemoveAt(kept.Count - 1);
                continue;
            }

            kept.Add(element);
        }

        string cleaned = string.Join('/', kept);
        return rooted ? "/" + cleaned : cleaned;
    }
}
