using System.Globalization;
using System.Runtime.InteropServices;

namespace PluggableShim.Runhcs.Standin;

internal static partial class Native
{
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "setsid", SetLastError = true)]
    public static partial int SetSid();

    [LibraryImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    public static partial int WaitPid(int pid, out int status, int options);

    public const int WNoHang = 1;

    [LibraryImport("libc", EntryPoint = "posix_spawn", SetLastError = true)]
    private static unsafe partial int PosixSpawn(out int pid, byte* path, nint fileActions, nint attributes, byte** argv, byte** envp);

    /// <summary>
    /// Starts <paramref name="path"/> with this process's stdio and environment, as runhcs starts
    /// its shims: a plain child that .NET does not know of, so that nothing here reaps it. (A child
    /// started through <c>Process</c> is reaped by .NET's SIGCHLD handling the moment it exits, and
    /// a shim that exited before this process would then take its status with it instead of
    /// leaving it to the shim's new parent.)
    /// </summary>
    public static unsafe int Spawn(string path, IReadOnlyList<string> args)
    {
        string[] argv = [path, .. args];
        string[] envp = [.. Environment.GetEnvironmentVariables().Cast<System.Collections.DictionaryEntry>()
            .Select(e => $"{e.Key}={e.Value}")];
        nint[] owned = [.. argv.Concat(envp).Select(a => Marshal.StringToCoTaskMemUTF8(a))];
        try
        {
            byte** argvp = stackalloc byte*[argv.Length + 1];
            byte** envpp = stackalloc byte*[envp.Length + 1];
            for (int i = 0; i < argv.Length; i++)
            {
                argvp[i] = (byte*)owned[i];
            }

            for (int i = 0; i < envp.Length; i++)
            {
                envpp[i] = (byte*)owned[argv.Length + i];
            }

            argvp[argv.Length] = null;
            envpp[envp.Length] = null;
            int error = PosixSpawn(out int pid, argvp[0], 0, 0, argvp, envpp);
            return error == 0 ? pid : throw new InvalidOperationException($"posix_spawn {path} failed: errno {error}");
        }
        finally
        {
            foreach (nint p in owned)
            {
                Marshal.FreeCoTaskMem(p);
            }
        }
    }

    /// <summary>Alive and not a zombie (a dead shim stays a zombie until its new parent reaps it).</summary>
    public static bool IsAlive(int pid)
    {
        if (pid <= 0)
        {
            return false;
        }

        try
        {
            string stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            char state = stat[(stat.LastIndexOf(')') + 2)..][0];
            return state is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }
}
