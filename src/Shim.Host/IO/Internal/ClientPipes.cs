using System.IO.Pipes;

namespace PluggableShim.Host.IO.Internal;

/// <summary>
/// Windows IO: containerd's clients serve named pipes (<c>\\.\pipe\ctr-ID-stdout</c> …) and the
/// shim dials them as a client, waiting for a bounded time (protocol.md §5). Off Windows .NET
/// emulates the pipes with Unix sockets in the temp folder, which is how the tests run this here.
/// </summary>
internal static class ClientPipes
{
    public const string Prefix = @"\\.\pipe\";

    public static bool IsPipe(string path) => path.StartsWith(Prefix, StringComparison.Ordinal) && path.Length > Prefix.Length;

    /// <exception cref="TimeoutException">Nobody served the pipe within <paramref name="timeout"/>.</exception>
    public static async Task<NamedPipeClientStream> DialAsync(
        string path, PipeDirection direction, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var pipe = new NamedPipeClientStream(".", path[Prefix.Length..], direction, PipeOptions.Asynchronous);
        try
        {
            await pipe.ConnectAsync(timeout, cancellationToken).ConfigureAwait(false);
            return pipe;
        }
        catch (TimeoutException ex)
        {
            await pipe.DisposeAsync().ConfigureAwait(false);
            throw new TimeoutException($"nobody served {path} within {timeout.TotalSeconds:0} s", ex);
        }
        catch
        {
            await pipe.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}

/// <summary>A client's named pipe for one output stream; closing it gives the client EOF.</summary>
internal sealed class ClientPipeSink(Stream pipe) : OutputSink(users: 1)
{
    // Blocking, as FIFO writes are: a client that stops reading holds the relay (then the process).
    public override void Write(ReadOnlySpan<byte> data, CancellationToken cancellationToken)
    {
        pipe.Write(data);
        pipe.Flush();
    }

    protected override void CloseWriter() => pipe.Dispose();
}
