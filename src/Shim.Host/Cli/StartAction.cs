using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using Grpc.Core;
using PluggableShim.Contracts.Group;
using PluggableShim.Host.Grouping;
using PluggableShim.Ttrpc;
using PluggableShim.Host.Plugins;
using PluggableShim.Host.Posix;

namespace PluggableShim.Host.Cli;

/// <summary>
/// <c>start</c>: find or spawn the daemon and print its address. Kept free of DI, logging and
/// plugin loading, since containerd waits on it for every container.
/// </summary>
/// <remarks>
/// Containers of one pod share a daemon (<see cref="ShimGroup"/>): when the group's daemon runs,
/// start joins it (<see cref="GroupMembership"/>) and prints its address without spawning anything.
/// Otherwise the socket is bound here and handed to the daemon as descriptor 3, so it accepts connections
/// from the moment the address is printed. The daemon reports readiness on descriptor 4: it
/// closes it once serving, or writes one line saying why it cannot start (a plugin that fails to
/// load, say), which becomes start's error for containerd to show.
/// </remarks>
internal static class StartAction
{
    public const int ListenFd = 3;
    public const int ReadyFd = 4;

    /// <summary>What the daemon writes on its readiness pipe once it serves.</summary>
    public const string ReadyMessage = "ready\n";
    public const string OptionsVariable = "PLUGGABLESHIM_START_OPTIONS";
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(10);

    public static async Task<int> RunAsync(ShimArguments args, Stream stdin, TextWriter stdout)
    {
        Identifiers.Validate(args.Id, "container id");
        Identifiers.ValidateNamespace(args.Namespace);
        // Handed to the daemon as read: it takes containerd's addresses from BootstrapParams too.
        byte[] options = ReadAll(stdin);
        StartInput input = StartInput.Decode(options, args.Id, args.Namespace);
        string bundle = args.Bundle.Length > 0 ? args.Bundle : Directory.GetCurrentDirectory();
        if (!Path.IsPathFullyQualified(bundle) || !Directory.Exists(bundle))
        {
            throw new ShimStartException($"bundle {bundle} is not an existing absolute directory");
        }

        PluginSelection.Result selection = PluginSelection.Resolve(InvokedAs.Get(), input.RuntimeOptionsBytes, bundle);
        StartOutput output = StartOutput.Parse(selection.Config.StartOutput);
        PluginSelection.RequireInstalled(selection.Config.ResolvePluginsDirectory(), selection.Plugin);
        string group = ShimGroup.Of(bundle, args.Id);
#if !LAUNCHER
        if (Windows.PortableHost.Enabled)
        {
            return await Windows.PipeStart.RunAsync(args with { Bundle = bundle }, selection.Plugin, group, options, output, stdout).ConfigureAwait(false);
        }
#endif

        string socketPath = ShimSocket.PathFor(args.Address, args.Namespace, group);
        string address = "unix://" + socketPath;
        Directory.CreateDirectory(ShimSocket.SocketDirectory);

        // Serialises starts of one group, and keeps the daemon from exiting while we join it.
        using GroupLock held = await GroupLock.AcquireAsync(GroupLock.PathFor(socketPath), ReadyTimeout).ConfigureAwait(false);
        if (File.Exists(socketPath) && await TryJoinAsync(address, args.Id, bundle, selection.Plugin, output.Grpc).ConfigureAwait(false) is { } joined)
        {
            WriteAddress(bundle, address, output.Format(address, joined.GrpcAddress), stdout);
            return 0;
        }

        File.Delete(socketPath); // a stale file from a dead shim
        foreach (string stale in StartOutput.GrpcSocketsOf(socketPath))
        {
            File.Delete(stale);
        }

        string? grpcSocket = output.Grpc ? StartOutput.GrpcSocketFor(socketPath) : null;
        // Deliberately never disposed: .NET unlinks a socket file it bound when the Socket is
        // disposed, and the daemon serves this very file. start exits right after anyway.
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(socketPath));
        socket.Listen(512);
        try
        {
            SpawnDaemon(args with { Bundle = bundle, GrpcSocket = grpcSocket ?? string.Empty }, selection.Plugin, group, options, (int)socket.Handle);
        }
        catch
        {
            // Nothing serves this group: leave neither its sockets nor its lock behind.
            File.Delete(socketPath);
            if (grpcSocket is not null)
            {
                File.Delete(grpcSocket);
            }

            held.DeleteFile();
            throw;
        }

        WriteAddress(bundle, address, output.Format(address, grpcSocket), stdout);
        return 0;
    }

    /// <summary>
    /// Asks the daemon at <paramref name="address"/> to keep a place for the container. False when
    /// nothing serves there (a dead daemon's socket); an error when it answers but refuses.
    /// </summary>
    internal static async Task<JoinResponse?> TryJoinAsync(string address, string containerId, string bundle, string plugin, bool wantGrpc)
    {
        TtrpcClient client;
        try
        {
            client = await TtrpcClient.ConnectAsync(address).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or IOException)
        {
            return null;
        }

        await using ConfiguredAsyncDisposable disposeClient = client.ConfigureAwait(false);
        try
        {
            return await new Group.GroupClient(client).JoinAsync(
                new JoinRequest { ContainerId = containerId, Bundle = bundle, Plugin = plugin, WantGrpc = wantGrpc },
                deadline: DateTime.UtcNow + JoinTimeout).ConfigureAwait(false);
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
        {
            return null; // the connection failed, or the daemon is on its way out
        }
        catch (RpcException ex)
        {
            throw new ShimStartException($"cannot join the shim at {address}: {ex.Status.Detail}");
        }
    }

    private static unsafe void SpawnDaemon(ShimArguments args, string plugin, string group, byte[] options, int socketFd)
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
            argv.AddRange(args.ToDaemonArguments(plugin, group, ListenFd, ReadyFd));
            var environment = Environment.GetEnvironmentVariables()
                .Cast<System.Collections.DictionaryEntry>()
                .Where(e => (string)e.Key is not (OptionsVariable or Windows.PortableHost.SwitchVariable))
                .Select(e => $"{e.Key}={e.Value}")
                .Append($"{OptionsVariable}={Convert.ToBase64String(options)}")
                .ToList();

            int pid = Spawner.Spawn(path, argv, environment, [(listen, ListenFd), (ready, ReadyFd)]);
            Native.Close(listen);
            Native.Close(writeEnd);
            writeEnd = -1;
            try
            {
                // The daemon writes exactly ReadyMessage once serving, or one line saying why not;
                // a bare end of file means it died first.
                string answer = ReadUntilClosed(readEnd, ReadyTimeout);
                if (answer != ReadyMessage)
                {
                    throw new ShimStartException(answer.Length > 0
                        ? answer.Trim()
                        : "shim daemon exited during start-up (see the shim's log in containerd's log)");
                }
            }
            catch
            {
                // A daemon that failed or hangs must not linger, holding a socket or a reservation.
                Native.Kill(pid, 9);
                int status;
                _ = Native.WaitPid(pid, &status, 0);
                throw;
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

    /// <summary>The managed daemon's file name, beside the native launcher.</summary>
    public const string DaemonBinary = "pluggableshim-daemon";

    private static (string Path, List<string> Argv) SelfCommand()
    {
#if LAUNCHER
        // The native launcher starts the managed daemon that sits beside it. argv[0] keeps the
        // name containerd used, so `ps` shows which runtime the daemon serves.
        string daemon = Path.Combine(AppContext.BaseDirectory, DaemonBinary);
        if (!File.Exists(daemon))
        {
            throw new ShimStartException($"{daemon} is missing: the shim is not installed whole");
        }

        return (daemon, [InvokedAs.Get()]);
#else
        string process = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell our own executable");
        if (Path.GetFileNameWithoutExtension(process) == "dotnet")
        {
            // Run as `dotnet pluggableshim-daemon.dll`: the daemon needs the same.
            string dll = typeof(StartAction).Assembly.Location;
            return (process, [process, dll]);
        }

        // argv[0] keeps the name containerd used, so the daemon selects the same way.
        return (process, [InvokedAs.Get()]);
#endif
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

            if (ready == 0)
            {
                continue; // the deadline check above ends the wait; the read below would block
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

    /// <summary>The bundle's <c>address</c> file keeps the ttrpc address; stdout gets the configured form.</summary>
    internal static void WriteAddress(string bundle, string address, string printed, TextWriter stdout)
    {
        string file = Path.Combine(bundle, "address");
        string temp = file + ".tmp";
        File.WriteAllText(temp, address);
        File.Move(temp, file, overwrite: true);
        stdout.Write(printed);
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
