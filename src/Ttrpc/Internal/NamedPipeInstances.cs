using System.IO.Pipes;
using System.Runtime.Versioning;
using System.Security.AccessControl;
using System.Security.Principal;

namespace PluggableShim.Ttrpc.Internal;

/// <summary>Creates the server instances of a named pipe, with the access asked for.</summary>
internal static class NamedPipeInstances
{
    /// <summary>A new instance waiting for a client.</summary>
    /// <remarks>
    /// Not FirstPipeInstance: a daemon that withdrew its pipe still holds connected instances
    /// while its successor (same group, same name) starts serving. Squatting is kept out by the
    /// name's prefix instead: only administrators may create pipes under
    /// <c>ProtectedPrefix\Administrators\</c>.
    /// </remarks>
    public static NamedPipeServerStream Create(string pipeName, NamedPipeAccess access)
    {
        const PipeOptions options = PipeOptions.Asynchronous;
        if (OperatingSystem.IsWindows() && access == NamedPipeAccess.Administrators)
        {
            return NamedPipeServerStreamAcl.Create(
                pipeName,
                PipeDirection.InOut,
                NamedPipeServerStream.MaxAllowedServerInstances,
                PipeTransmissionMode.Byte,
                options,
                inBufferSize: 0,
                outBufferSize: 0,
                AdministratorsOnly());
        }

        return new NamedPipeServerStream(
            pipeName,
            PipeDirection.InOut,
            NamedPipeServerStream.MaxAllowedServerInstances,
            PipeTransmissionMode.Byte,
            options | PipeOptions.CurrentUserOnly);
    }

    // Never run here (no Windows machine): the ACL containerd's Go shims give their pipes,
    // administrators and SYSTEM, plus our own user so that we can add instances.
    [SupportedOSPlatform("windows")]
    private static PipeSecurity AdministratorsOnly()
    {
        var security = new PipeSecurity();
        security.SetAccessRuleProtection(isProtected: true, preserveInheritance: false);
        foreach (WellKnownSidType sid in (WellKnownSidType[])[WellKnownSidType.BuiltinAdministratorsSid, WellKnownSidType.LocalSystemSid])
        {
            security.AddAccessRule(new PipeAccessRule(new SecurityIdentifier(sid, null), PipeAccessRights.FullControl, AccessControlType.Allow));
        }

        using WindowsIdentity self = WindowsIdentity.GetCurrent();
        if (self.User is { } user)
        {
            security.AddAccessRule(new PipeAccessRule(user, PipeAccessRights.FullControl, AccessControlType.Allow));
        }

        return security;
    }
}
