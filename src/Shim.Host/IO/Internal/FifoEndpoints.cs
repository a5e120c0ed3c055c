using PluggableShim.Host.Posix;

namespace PluggableShim.Host.IO.Internal;

/// <summary>
/// Our ends of the FIFOs a client created for a process's standard streams, used with
/// non-blocking descriptors and poll() in short slices, so that no thread is ever stuck in
/// open, read or write: every wait notices cancellation within <see cref="Slice"/>.
/// </summary>
internal static class FifoEndpoints
{
    public const int Slice = 200; // milliseconds

    /// <summary>Whether <paramref name="path"/> is a FIFO (by statx, which has one layout on every architecture).</summary>
    public static unsafe bool IsFifo(string path)
    {
        const int AtFdCwd = -100;
        const uint StatxType = 1;
        const int ModeOffset = 28;
        byte* buffer = stackalloc byte[256];
        if (Native.Statx(AtFdCwd, path, 0, StatxType, buffer) != 0)
        {
            return false;
        }

        ushort mode = *(ushort*)(buffer + ModeOffset);
        return (mode & 0xF000) == 0x1000;
    }

    /// <summary>
    /// Opens <paramref name="path"/> for writing once the client has its read end open, retrying
    /// until <paramref name="timeout"/>. A second, read-only descriptor is kept so the FIFO never
    /// loses its last reader (a client that reconnects finds the stream intact).
    /// </summary>
    public static async Task<(FileDescriptor Writer, FileDescriptor KeepAlive)> OpenWriterAsync(
        string path, TimeSpan timeout, CancellationToken cancellationToken)
    {
        DateTime deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            int fd = Native.Open(path, Native.OWrOnly | Native.ONonBlock | Native.OCloExec, 0);
            if (fd >= 0)
            {
                var writer = new FileDescriptor(fd);
                int keep = Native.Open(path, Native.ORdOnly | Native.ONonBlock | Native.OCloExec, 0);
                if (keep < 0)
                {
                    int error = Native.LastError;
                    writer.Dispose();
                    throw new IOException($"open {path} for reading: {Native.Describe(error)}");
                }

                return (writer, new FileDescriptor(keep));
            }

            int errno = Native.LastError;
            if (errno != Native.ENxio)
            {
                throw new IOException($"open {path} for writing: {Native.Describe(errno)}");
            }

            if (DateTime.UtcNow >= deadline)
            {
                throw new TimeoutException(
                    $"nobody opened {path} for reading within {timeout.TotalSeconds:0.#} s; the client must open its FIFO ends before Create");
            }

            await Task.Delay(25, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Opens the read end of a stdin FIFO without waiting for its writer.</summary>
    public static FileDescriptor OpenReader(string path)
    {
        int fd = Native.Open(path, Native.ORdOnly | Native.ONonBlock | Native.OCloExec, 0);
        if (fd < 0)
        {
            throw new IOException($"open {path} for reading: {Native.Describe(Native.LastError)}");
        }

        return new FileDescriptor(fd);
    }

    /// <summary>Writes all of <paramref name="data"/>, waiting in slices while the FIFO is full.</summary>
    public static void WriteAll(FileDescriptor fd, ReadOnlySpan<byte> data, CancellationToken cancellationToken)
    {
        // The reference keeps the descriptor number ours while we use it, even if it is disposed meanwhile.
        bool added = false;
        fd.DangerousAddRef(ref added);
        try
        {
            WriteAllCore(fd, data, cancellationToken);
        }
        finally
        {
            fd.DangerousRelease();
        }
    }

    private static unsafe void WriteAllCore(FileDescriptor fd, ReadOnlySpan<byte> data, CancellationToken cancellationToken)
    {
        fixed (byte* start = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                nint n = Native.Write(fd.Fd, start + done, data.Length - done);
                if (n > 0)
                {
                    done += (int)n;
                    continue;
                }

                int errno = Native.LastError;
                if (errno == Native.EIntr)
                {
                    continue;
                }

                if (errno != Native.EAgain)
                {
                    throw new IOException($"write: {Native.Describe(errno)}");
                }

                WaitFor(fd, Native.PollOut, cancellationToken);
            }
        }
    }

    /// <summary>
    /// Reads what is available, waiting in slices. Returns 0 at end of stream: the writer had
    /// opened the FIFO and closed it again (Linux reports no hang-up before a writer was seen).
    /// </summary>
    public static int Read(FileDescriptor fd, Span<byte> buffer, CancellationToken cancellationToken)
    {
        bool added = false;
        fd.DangerousAddRef(ref added);
        try
        {
            return ReadCore(fd, buffer, cancellationToken);
        }
        finally
        {
            fd.DangerousRelease();
        }
    }

    /// <summary>
    /// Reads what is in the FIFO right now without waiting; 0 when it is empty or at its end.
    /// </summary>
    public static unsafe int ReadAvailable(FileDescriptor fd, Span<byte> buffer)
    {
        bool added = false;
        fd.DangerousAddRef(ref added);
        try
        {
            fixed (byte* start = buffer)
            {
                while (true)
                {
                    nint n = Native.Read(fd.Fd, start, buffer.Length);
                    if (n >= 0)
                    {
                        return (int)n;
                    }

                    int errno = Native.LastError;
                    if (errno == Native.EAgain)
                    {
                        return 0;
                    }

                    if (errno != Native.EIntr)
                    {
                        throw new IOException($"read from FIFO: {Native.Describe(errno)}");
                    }
                }
            }
        }
        finally
        {
            fd.DangerousRelease();
        }
    }

    private static unsafe int ReadCore(FileDescriptor fd, Span<byte> buffer, CancellationToken cancellationToken)
    {
        fixed (byte* start = buffer)
        {
            while (true)
            {
                if (!WaitFor(fd, Native.PollIn, cancellationToken))
                {
                    return 0;
                }

                nint n = Native.Read(fd.Fd, start, buffer.Length);
                if (n >= 0)
                {
                    return (int)n;
                }

                int errno = Native.LastError;
                if (errno is not (Native.EIntr or Native.EAgain))
                {
                    throw new IOException($"read from FIFO: {Native.Describe(errno)}");
                }
            }
        }
    }

    // Returns false when the descriptor reports hang-up with nothing left to read. Cancellation
    // wakes the wait at once: an eventfd polled beside the FIFO is signalled by the token (the
    // slice bound stays as a fallback should it ever be missed).
    private static unsafe bool WaitFor(FileDescriptor fd, short events, CancellationToken cancellationToken)
    {
        int wake = cancellationToken.CanBeCanceled ? Native.EventFd(0, Native.EfdCloExec | Native.EfdNonBlock) : -1;
        CancellationTokenRegistration registration = wake >= 0
            ? cancellationToken.UnsafeRegister(static state => Signal((int)state!), wake)
            : default;
        try
        {
            Native.PollFd* polls = stackalloc Native.PollFd[2];
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                polls[0] = new Native.PollFd { Fd = fd.Fd, Events = events };
                polls[1] = new Native.PollFd { Fd = wake, Events = Native.PollIn };
                int ready = Native.Poll(polls, wake >= 0 ? 2u : 1u, Slice);
                if (ready < 0)
                {
                    int errno = Native.LastError;
                    if (errno == Native.EIntr)
                    {
                        continue;
                    }

                    throw new IOException($"poll on FIFO: {Native.Describe(errno)}");
                }

                short revents = polls[0].Revents;
                if (ready == 0 || revents == 0)
                {
                    continue; // timed out, or only the wake-up fired: the loop's check throws
                }

                if ((revents & events) != 0)
                {
                    return true;
                }

                if ((revents & (Native.PollHup | Native.PollErr)) != 0)
                {
                    if (events == Native.PollOut)
                    {
                        throw new IOException("the reading end went away");
                    }

                    return false;
                }

                if ((revents & Native.PollNval) != 0)
                {
                    ObjectDisposedException.ThrowIf(true, fd);
                }
            }
        }
        finally
        {
            registration.Dispose(); // waits for a running callback, so the eventfd outlives it
            if (wake >= 0)
            {
                Native.Close(wake);
            }
        }
    }

    private static unsafe void Signal(int eventFd)
    {
        ulong one = 1;
        _ = Native.Write(eventFd, (byte*)&one, sizeof(ulong));
    }
}
