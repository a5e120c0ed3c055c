using Microsoft.Win32.SafeHandles;
using PluggableShim.Host.Posix;

namespace PluggableShim.Host.IO.Internal;

/// <summary>An owned POSIX file descriptor, closed exactly once.</summary>
internal sealed class FileDescriptor : SafeHandleZeroOrMinusOneIsInvalid
{
    public FileDescriptor(int fd)
        : base(ownsHandle: true) => SetHandle(fd);

    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => Native.Close((int)handle) == 0;
}
