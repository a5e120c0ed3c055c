using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace PluggableShim.Ttrpc.Internal;

/// <summary>The process on the other end of a Unix socket, as the kernel reports it (SO_PEERCRED).</summary>
internal readonly record struct PeerCredentials(int Pid, uint Uid, uint Gid)
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    /// <summary>Returns the peer's credentials, or null where the platform cannot tell (not Linux).</summary>
    public static PeerCredentials? TryGet(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        Span<byte> ucred = stackalloc byte[12];
        int length = socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred);
        if (length < 12)
        {
            return null;
        }

        return new PeerCredentials(
            MemoryMarshal.Read<int>(ucred),
            MemoryMarshal.Read<uint>(ucred[4..]),
            MemoryMarshal.Read<uint>(ucred[8..]));
    }

    public static uint EffectiveUid() => OperatingSystem.IsWindows() ? 0 : NativeMethods.geteuid();
}

internal static partial class NativeMethods
{
    [LibraryImport("libc", SetLastError = false)]
    internal static partial uint geteuid();
}
