using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace PluggableShim.Host.Windows;

/// <summary>Win32 calls the portable start needs on Windows. Compiled here, never run.</summary>
[SupportedOSPlatform("windows")]
internal static partial class WindowsHandles
{
    private const int StdInputHandle = -10;
    private const int StdOutputHandle = -11;
    private const int StdErrorHandle = -12;
    private const uint HandleFlagInherit = 0x1;

    /// <summary>
    /// Clears the inherit flag of our standard handles (containerd's pipes): Process.Start creates
    /// the child with handle inheritance on, and a daemon inheriting containerd's pipe would keep
    /// containerd waiting for start's output forever.
    /// </summary>
    public static void StopInheritingStandardHandles()
    {
        foreach (int which in (int[])[StdInputHandle, StdOutputHandle, StdErrorHandle])
        {
            nint handle = GetStdHandle(which);
            if (handle != 0 && handle != -1)
            {
                // Fails harmlessly for a handle that is not there (no console, no pipe).
                _ = SetHandleInformation(handle, HandleFlagInherit, 0);
            }
        }
    }

    [LibraryImport("kernel32.dll", SetLastError = true)]
    private static partial nint GetStdHandle(int nStdHandle);

    [LibraryImport("kernel32.dll", SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    private static partial bool SetHandleInformation(nint hObject, uint dwMask, uint dwFlags);
}
