using System.Runtime.InteropServices;
using System.Text;

namespace PluggableShim.Host.Posix;

/// <summary>
/// Starts a detached process with posix_spawn: a new session (so it leaves containerd's
/// process group), /dev/null as stdin, stdout and stderr (containerd reads start's output
/// until EOF, so the daemon must not hold it), and chosen descriptors at chosen numbers.
/// .NET's Process.Start can do none of this.
/// </summary>
internal static unsafe class Spawner
{
    private const int OpaqueSize = 1024; // larger than glibc's posix_spawn_file_actions_t and posix_spawnattr_t

    public static int Spawn(
        string path,
        IReadOnlyList<string> argv,
        IReadOnlyList<string> environment,
        IReadOnlyList<(int Source, int Target)> descriptors)
    {
        void* actions = NativeMemory.AllocZeroed(OpaqueSize);
        void* attributes = NativeMemory.AllocZeroed(OpaqueSize);
        var strings = new List<nint>();
        try
        {
            Check(Native.FileActionsInit(actions), "posix_spawn_file_actions_init");
            Check(Native.SpawnAttrInit(attributes), "posix_spawnattr_init");
            Check(Native.SpawnAttrSetFlags(attributes, Native.PosixSpawnSetSid), "posix_spawnattr_setflags");
            for (int fd = 0; fd < 3; fd++)
            {
                int flags = fd == 0 ? Native.ORdOnly : Native.OWrOnly;
                Check(Native.FileActionsAddOpen(actions, fd, "/dev/null", flags, 0), "addopen /dev/null");
            }

            foreach ((int source, int target) in descriptors)
            {
                // dup2 clears close-on-exec on the target; sources are never 0-2 or a target.
                Check(Native.FileActionsAddDup2(actions, source, target), "adddup2");
            }

            byte** args = ToNative(argv, strings);
            byte** env = ToNative(environment, strings);
            byte* file = Utf8(path, strings);
            int pid;
            Check(Native.PosixSpawn(&pid, file, actions, attributes, args, env), "posix_spawn " + path);
            return pid;
        }
        finally
        {
            _ = Native.FileActionsDestroy(actions);
            _ = Native.SpawnAttrDestroy(attributes);
            NativeMemory.Free(actions);
            NativeMemory.Free(attributes);
            foreach (nint p in strings)
            {
                NativeMemory.Free((void*)p);
            }
        }
    }

    private static byte** ToNative(IReadOnlyList<string> values, List<nint> owned)
    {
        var array = (byte**)NativeMemory.AllocZeroed((nuint)(values.Count + 1), (nuint)sizeof(nint));
        owned.Add((nint)array);
        for (int i = 0; i < values.Count; i++)
        {
            array[i] = Utf8(values[i], owned);
        }

        return array;
    }

    private static byte* Utf8(string value, List<nint> owned)
    {
        int length = Encoding.UTF8.GetByteCount(value);
        var buffer = (byte*)NativeMemory.AllocZeroed((nuint)length + 1);
        owned.Add((nint)buffer);
        Encoding.UTF8.GetBytes(value, new Span<byte>(buffer, length));
        return buffer;
    }

    private static void Check(int result, string what)
    {
        if (result != 0)
        {
            throw new IOException($"{what} failed: {Native.Describe(result)}");
        }
    }
}
