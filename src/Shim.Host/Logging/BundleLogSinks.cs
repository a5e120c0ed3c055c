using Microsoft.Win32.SafeHandles;
using PluggableShim.Host.Posix;

namespace PluggableShim.Host.Logging;

/// <summary>
/// Where the daemon's log lines go: the <c>log</c> FIFO of a bundle it serves, which containerd
/// reads into its own log. A daemon serving a pod has one per container; lines go to the oldest
/// that still works, so logging goes on after the container that started the daemon is deleted.
/// </summary>
/// <remarks>
/// Writes block (a line waits for containerd rather than being cut), one at a time under
/// <c>_gate</c>: the callers already serialise lines, and a line must stay whole.
/// On Windows (the portable path) each container's sink is instead the log pipe the shim serves
/// for it, <c>\\.\pipe\containerd-shim-NS-ID-log</c> (<see cref="Windows.LogPipeSink"/>).
/// </remarks>
internal sealed class BundleLogSinks(string? pipeNamespace = null) : IDisposable
{
    private readonly Lock _gate = new();

    // Guarded by _gate. Oldest first.
    private readonly List<(string Id, Stream Fifo)> _sinks = [];

    /// <summary>Opens the bundle's log FIFO, if containerd is reading it.</summary>
    public void Add(string containerId, string bundle)
    {
        Stream? fifo = pipeNamespace is not null
            ? Windows.LogPipeSink.Serve(Windows.PortableHost.LogPipeName(pipeNamespace, containerId))
            : Open(Path.Combine(bundle, "log"));
        if (fifo is null)
        {
            return;
        }

        lock (_gate)
        {
            if (_sinks.Exists(s => s.Id == containerId))
            {
                fifo.Dispose();
                return;
            }

            _sinks.Add((containerId, fifo));
        }
    }

    /// <summary>The container is gone; its FIFO is closed unless it is the last one left.</summary>
    public void Remove(string containerId)
    {
        Stream? closing = null;
        lock (_gate)
        {
            int index = _sinks.FindIndex(s => s.Id == containerId);
            if (index >= 0 && _sinks.Count > 1)
            {
                closing = _sinks[index].Fifo;
                _sinks.RemoveAt(index);
            }
        }

        closing?.Dispose();
    }

    /// <summary>Writes a line to the first sink that takes it; dropped when none does.</summary>
    public void Write(ReadOnlySpan<byte> line)
    {
        lock (_gate)
        {
            while (_sinks.Count > 0)
            {
                try
                {
                    _sinks[0].Fifo.Write(line);
                    return;
                }
                catch (IOException)
                {
                    // containerd stopped reading this one.
                    _sinks[0].Fifo.Dispose();
                    _sinks.RemoveAt(0);
                }
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach ((_, Stream fifo) in _sinks)
            {
                fifo.Dispose();
            }

            _sinks.Clear();
        }
    }

    private static FileStream? Open(string path)
    {
        // Non-blocking open fails at once when nobody reads (no containerd, or a test).
        int fd = Native.Open(path, Native.OWrOnly | Native.ONonBlock | Native.OCloExec, 0);
        if (fd < 0)
        {
            return null;
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        // Only containerd's FIFO: a regular file named log (a bad Join) must never be overwritten.
        if (!IO.Internal.FifoEndpoints.IsFifo($"/proc/self/fd/{fd}"))
        {
            handle.Dispose();
            return null;
        }

        int flags = Native.Fcntl(fd, Native.FGetFl, 0);
        Native.Fcntl(fd, Native.FSetFl, flags & ~Native.ONonBlock);
        return new FileStream(handle, FileAccess.Write, bufferSize: 0);
    }
}
