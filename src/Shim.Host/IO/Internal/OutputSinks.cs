using PluggableShim.Host.Posix;

namespace PluggableShim.Host.IO.Internal;

/// <summary>
/// Where a relay writes one output stream. A sink may serve both streams (one file, one
/// logging program's pair of pipes is two sinks): each relay calls <see cref="Release"/> when its
/// stream ends, and the sink closes its writing side when the last user has released it, so
/// the reader (a client, a logging program) sees end of file as soon as the output is over.
/// <see cref="IDisposable.Dispose"/> closes everything regardless, and is safe while a relay
/// still writes: descriptors are reference-counted SafeHandles, so a late write fails with
/// ObjectDisposedException instead of reaching a recycled descriptor number.
/// </summary>
internal abstract class OutputSink : IDisposable
{
    private int _users;

    protected OutputSink(int users) => _users = users;

    public abstract void Write(ReadOnlySpan<byte> data, CancellationToken cancellationToken);

    public void Release()
    {
        if (Interlocked.Decrement(ref _users) == 0)
        {
            CloseWriter();
        }
    }

    public void Dispose()
    {
        CloseWriter();
        CloseRest();
    }

    protected abstract void CloseWriter();

    protected virtual void CloseRest()
    {
    }
}

/// <summary>
/// A client's FIFO. A read-only descriptor is kept until disposal so the FIFO never loses its
/// last reader while the client reconnects; the writer closes when the output ends.
/// </summary>
internal sealed class FifoSink(FileDescriptor writer, FileDescriptor keepAlive) : OutputSink(users: 1)
{
    public override void Write(ReadOnlySpan<byte> data, CancellationToken cancellationToken) =>
        FifoEndpoints.WriteAll(writer, data, cancellationToken);

    protected override void CloseWriter() => writer.Dispose();

    protected override void CloseRest() => keepAlive.Dispose();
}

/// <summary>
/// A regular file opened with O_APPEND, so that every write lands at the end even when stdout
/// and stderr share it or another writer appends too (a position kept by a FileStream would
/// overwrite one stream with the other).
/// </summary>
internal sealed class AppendFileSink : OutputSink
{
    private readonly FileDescriptor _file;

    private AppendFileSink(FileDescriptor file, int users)
        : base(users) => _file = file;

    public static AppendFileSink Open(string path, int users)
    {
        int fd = Native.Open(path, Native.OWrOnly | Native.OAppend | Native.OCreat | Native.OCloExec, Convert.ToInt32("644", 8));
        if (fd < 0)
        {
            throw new IOException($"open {path} for appending: {Native.Describe(Native.LastError)}");
        }

        return new AppendFileSink(new FileDescriptor(fd), users);
    }

    public override void Write(ReadOnlySpan<byte> data, CancellationToken cancellationToken) =>
        FifoEndpoints.WriteAll(_file, data, cancellationToken);

    protected override void CloseWriter() => _file.Dispose();
}

/// <summary>The writing end of a pipe to a logging program (non-blocking on our side only).</summary>
internal sealed class PipeSink(FileDescriptor writer) : OutputSink(users: 1)
{
    public override void Write(ReadOnlySpan<byte> data, CancellationToken cancellationToken) =>
        FifoEndpoints.WriteAll(writer, data, cancellationToken);

    protected override void CloseWriter() => writer.Dispose();
}
