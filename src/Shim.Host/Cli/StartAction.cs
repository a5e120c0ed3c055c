using System.Net.Sockets;
using System.Text;
using PluggableShim.Host.Plugins;
using PluggableShim.Host.Posix;

namespace PluggableShim.Host.Cli;

/// <summary>
/// <c>start</c>: find or spawn the daemon and print its address. Kept free of DI, logging and
/// plugin loading, since containerd waits on it for every container.
/// </summary>
/// <remarks>
/// The socket is bound here and handed to the daemon as descriptor 3, so it accepts connections
/// from the moment the address is printed. The daemon reports readiness on descriptor 4: it
/// closes it once serving, or writes one line saying why it cannot start (a plugin that fails to
/// load, say), which becomes start's error for containerd to show.
/// </remarks>
internal static class StartAction
{
    public const int ListenFd = 3;
    public const int ReadyFd = 4;
    public const string OptionsVariable = "PLUGGABLESHIM_START_OPTIONS";
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);

    public static int Run(ShimArguments args, Stream stdin, TextWriter stdout, TextWriter stderr)
    {
        Identifiers.Validate(args.Id, "container id");
        Identifiers.ValidateNamespace(args.Namespace);
        byte[] options = ReadAll(stdin);
        string bundle = args.Bundle.Length > 0 ? args.Bundle : Directory.GetCurrentDirectory();
        PluginSelection.Result selection = PluginSelection.Resolve(InvokedAs.Get(), options, bundle);

        string socketPath = ShimSocket.PathFor(args.Address, args.Namespace, args.Id);
        string address = "unix://" + socketPath;
        if (ShimSocket.Answers(socketPath))
        {
            WriteAddress(bundle, address, stdout);
            return 0;
        }

        Directory.CreateDirectory(ShimSocket.SocketDirectory);
        File.Delete(socketPath); // a stale file from a dead shim
        // Deliberately never disposed: .NET unlinks a socket file it bound when the Socket is
        // disposed, and the daemon serves this very file. start exits right after anyway.
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(socketPath));
        socket.Listen(512);
        try
        {
            SpawnDaemon(args with { Bundle = bundle }, selection.Plugin, options, (int)socket.Handle);
        }
        catch
        {
            File.Delete(socketPath);
            throw;
        }

        WriteAddress(bundle, address, stdout);
        return 0;
    }

    private static unsafe void SpawnDaemon(ShimArguments args, string plugin, byte[] options, int socketFd)
    {
        int* pipe = stackalloc int[2];
        if (Native.Pipe2(pipe, Native.OCloExec) != 0)
        {
            throw new IOException("pipe2 failed: " + Native.Describe(Native.LastError));
        }

        int readEnd = pipe[0];
        int writeEnd = pipe[1];
        try
        {
            // Move both descriptors above the target numbers so that dup2 onto 3 and 4 never collides.
            int listen = Native.Fcntl(socketFd, Native.FDupFdCloExec, 10);
            int ready = Native.Fcntl(writeEnd, Native.FDupFdCloExec, 10);
            Native.Close(writeEnd);
            writeEnd = ready;

            (string path, List<string> argv) = SelfCommand();
            argv.AddRange(args.ToDaemonArguments(plugin, ListenFd, ReadyFd));
            var environment = Environment.GetEnvironmentVariables()
                .Cast<System.Collections.DictionaryEntry>()
                .Where(e => (string)e.Key != OptionsVariable)
                .Select(e => $"{e.Key}={e.Value}")
                .Append($"{OptionsVariable}={Convert.ToBase64String(options)}")
                .ToList();

            int pid = Spawner.Spawn(path, argv, environment, [(listen, ListenFd), (ready, ReadyFd)]);
            Native.Close(listen);
            Native.Close(writeEnd);
            writeEnd = -1;
            string failure = ReadUntilClosed(readEnd, ReadyTimeout);
            if (failure.Length > 0)
            {
                throw new ShimStartException(failure.Trim());
            }

            int status;
            if (Native.WaitPid(pid, &status, 1 /* WNOHANG */) == pid)
            {
                throw new ShimStartException($"shim daemon exited during start-up (wait status {status})");
            }
        }
        finally
        {
            Native.Close(readEnd);
            if (writeEnd >= 0)
            {
                Native.Close(writeEnd);
            }
        }
    }

    private static (string Path, List<string> Argv) SelfCommand()
    {
        string process = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell our own executable");
        if (Path.GetFileNameWithoutExtension(process) == "dotnet")
        {
            // Run as `dotnet containerd-shim-pluggable-v1.dll`: the daemon needs the same.
            string dll = typeof(StartAction).Assembly.Location;
            return (process, [process, dll]);
        }

        // argv[0] keeps the name containerd used, so the daemon selects the same way.
        return (process, [InvokedAs.Get()]);
    }

    private static unsafe string ReadUntilClosed(int fd, TimeSpan timeout)
    {
        var message = new MemoryStream();
        byte* buffer = stackalloc byte[1024];
        DateTime deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            int left = (int)(deadline - DateTime.UtcNow).TotalMilliseconds;
            if (left <= 0)
            {
                throw new ShimStartException($"shim daemon did not become ready within {timeout.TotalSeconds:0} s");
            }

            var poll = new Native.PollFd { Fd = fd, Events = Native.PollIn };
            int ready = Native.Poll(&poll, 1, left);
            if (ready < 0 && Native.LastError == Native.EIntr)
            {
                continue;
            }

            nint n = Native.Read(fd, buffer, 1024);
            if (n < 0 && Native.LastError is Native.EIntr or Native.EAgain)
            {
                continue;
            }

            if (n <= 0)
            {
                return Encoding.UTF8.GetString(message.ToArray());
            }

            message.Write(new ReadOnlySpan<byte>(buffer, (int)n));
        }
    }

    private static void WriteAddress(string bundle, string address, TextWriter stdout)
    {
        string file = Path.Combine(bundle, "address");
        string temp = file + ".tmp";
        File.WriteAllText(temp, address);
        File.Move(temp, file, overwrite: true);
        stdout.Write(address);
        stdout.Flush();
    }

    private static byte[] ReadAll(Stream stdin)
    {
        using var buffer = new MemoryStream();
        stdin.CopyTo(buffer);
        return buffer.ToArray();
    }
}

/// <summary>start could not bring a daemon up; the message is what containerd shows.</summary>
internal sealed class ShimStartException(string message) : Exception(message);
