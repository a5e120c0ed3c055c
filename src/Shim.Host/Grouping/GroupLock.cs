using PluggableShim.Host.Posix;
using PluggableShim.Host.Windows;

namespace PluggableShim.Host.Grouping;

/// <summary>
/// An exclusive lock per daemon socket (<c>SOCKET.lock</c>, flock), held by <c>start</c> while it
/// joins or spawns the group's daemon, and by the daemon while it decides to exit and removes its
/// socket. So a start never joins a daemon that is leaving, and two starts never both spawn one.
/// </summary>
/// <remarks>
/// The daemon deletes the lock file on its way out so that nothing is left in the socket folder.
/// A waiter may then hold a lock on the deleted file while a newcomer locks a new one; so after
/// locking, the holder checks that its descriptor still names the file at the path, and retries
/// if not.
/// </remarks>
internal sealed class GroupLock : IDisposable
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(10);
    private readonly int _fd;
    private readonly FileStream? _file;
    private bool _released;

    private GroupLock(string path, int fd)
    {
        Path = path;
        _fd = fd;
    }

    private GroupLock(string path, FileStream file)
    {
        Path = path;
        _fd = -1;
        _file = file;
    }

    public string Path { get; }

    public static string PathFor(string socketPath) => socketPath + ".lock";

    /// <summary>Takes the lock, waiting at most <paramref name="timeout"/>.</summary>
    public static async Task<GroupLock> AcquireAsync(string path, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (PortableHost.Enabled)
        {
            return await AcquireFileAsync(path, timeout, cancellationToken).ConfigureAwait(false);
        }

        DateTime deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            int fd = Native.Open(path, Native.ORdOnly | Native.OCreat | Native.OCloExec, 0x180 /* 0600 */);
            if (fd < 0)
            {
                throw new IOException($"cannot open lock {path}: {Native.Describe(Native.LastError)}");
            }

            GroupLock? acquired = null;
            try
            {
                while (Native.Flock(fd, Native.LockEx | Native.LockNb) != 0)
                {
                    int errno = Native.LastError;
                    if (errno != Native.EWouldBlock && errno != Native.EIntr)
                    {
                        throw new IOException($"cannot lock {path}: {Native.Describe(errno)}");
                    }

                    if (DateTime.UtcNow > deadline)
                    {
                        throw new TimeoutException($"lock {path} still held after {timeout.TotalSeconds:0} s");
                    }

                    await Task.Delay(PollInterval, cancellationToken).ConfigureAwait(false);
                }

                if (StillNamesPath(fd))
                {
                    acquired = new GroupLock(path, fd);
                    return acquired;
                }
            }
            finally
            {
                if (acquired is null)
                {
                    Native.Close(fd);
                }
            }

            // We locked a file deleted meanwhile: try the one at the path now, within the same bound.
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"lock {path} kept being replaced for {timeout.TotalSeconds:0} s");
            }
        }
    }

    /// <summary>Deletes the lock file while still holding it: for the daemon's last act.</summary>
    public void DeleteFile()
    {
        ObjectDisposedException.ThrowIf(_released, this);
        if (_file is null)
        {
            File.Delete(Path); // a file lock is removed on every release anyway
        }
    }

    public void Dispose()
    {
        if (_released)
        {
            return;
        }

        _released = true;
        if (_file is not null)
        {
            if (!OperatingSystem.IsWindows())
            {
                File.Delete(Path); // ours: a waiter that locked a deleted file lets go again (below)
            }

            _file.Dispose(); // on Windows DeleteOnClose removes it
            return;
        }

        Native.Close(_fd); // closing the last descriptor releases the flock
    }

    // The portable lock (Windows; Linux under the test switch): the lock file opened for exclusive
    // use, FileShare.None, which is a sharing violation for every other opener on Windows and an
    // flock(LOCK_EX) in .NET on Unix. On Windows the file is DeleteOnClose (by handle): nothing is
    // left behind, and no one can open a file being deleted, so no waiter ever holds a stale one.
    // On Unix .NET deletes on close by path, which could remove a successor's file, so the holder
    // deletes it itself and a waiter checks it locked the file still at the path.
    internal static async Task<GroupLock> AcquireFileAsync(string path, TimeSpan timeout, CancellationToken cancellationToken)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        FileOptions options = OperatingSystem.IsWindows() ? FileOptions.DeleteOnClose : FileOptions.None;
        while (true)
        {
            FileStream? file = null;
            try
            {
                file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, options);
            }
            catch (Exception ex) when ((ex is IOException and not FileNotFoundException and not DirectoryNotFoundException)
                                       || (ex is UnauthorizedAccessException && OperatingSystem.IsWindows()))
            {
                // Held (a sharing violation), or on Windows being deleted by its last holder.
            }

            if (file is not null)
            {
                if (OperatingSystem.IsWindows() || StillNamesPath((int)file.SafeFileHandle.DangerousGetHandle()))
                {
                    return new GroupLock(path, file);
                }

                file.Dispose();
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"lock {path} still held after {timeout.TotalSeconds:0} s");
            }

            await Task.Delay(PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    // The descriptor's file is the one at the path unless it was deleted meanwhile (Linux marks
    // a deleted file's link in /proc with " (deleted)").
    private static bool StillNamesPath(int fd)
    {
        try
        {
            FileSystemInfo? target = new FileInfo($"/proc/self/fd/{fd}").ResolveLinkTarget(returnFinalTarget: false);
            return target is not null && !target.FullName.EndsWith(" (deleted)", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }
}
