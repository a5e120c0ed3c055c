namespace PluggableShim.Ttrpc;

/// <summary>Who may connect to a named pipe a <see cref="TtrpcListener"/> serves.</summary>
public enum NamedPipeAccess
{
    /// <summary>
    /// Only this process's user. On Windows the platform's check of the client's user; elsewhere
    /// .NET's pipe emulation (a Unix socket) compares the peer's uid.
    /// </summary>
    CurrentUser,

    /// <summary>
    /// On Windows, an explicit ACL granting only BUILTIN\Administrators, LocalSystem and this
    /// process's user, as containerd's shims serve their pipes (containerd runs as SYSTEM or an
    /// administrator). Elsewhere the same as <see cref="CurrentUser"/>.
    /// </summary>
    Administrators,
}
