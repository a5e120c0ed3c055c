using System.Diagnostics;
using System.Text;
using PluggableShim.Host.Cli;
using PluggableShim.Host.Grouping;

namespace PluggableShim.Host.Windows;

/// <summary>
/// <c>start</c> on the portable path (<see cref="PortableHost"/>): join the group's daemon, or
/// spawn one and wait until it serves its pipe.
/// </summary>
/// <remarks>
/// Nothing can be handed to the daemon but its arguments, environment and stdio, so the daemon
/// creates its pipe itself, and start prints the address only after the daemon's first stdout
/// line says it serves (any other line is start's error). All three of the daemon's standard
/// streams are pipes of ours, closed when start exits: containerd reads start's output until
/// EOF, and a daemon holding containerd's pipe would hang it. On Windows start's own standard
/// handles are made non-inheritable first, since Process.Start lets the child inherit every
/// inheritable handle.
/// </remarks>
internal static class PipeStart
{
    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(ShimArguments args, string plugin, string group, byte[] options, StartOutput output, TextWriter stdout)
    {
        if (output.Grpc)
        {
            // Known gap: Kestrel on the shim's named pipe is not wired into the portable host yet.
            throw new ShimStartException($"{StartOutput.ConfigKey} asks for gRPC, which the named-pipe host does not serve yet; use a ttrpc form");
        }

        string address = PortableHost.PipeAddress(args.Namespace, group);
        string marker = PortableHost.MarkerPath(args.Address, args.Namespace, group);
        Directory.CreateDirectory(PortableHost.StateDirectory);

        using GroupLock held = await GroupLock.AcquireAsync(GroupLock.PathFor(marker), ReadyTimeout).ConfigureAwait(false);
        if (PortableHost.MarkerNamesLiveProcess(marker) && await StartAction.TryJoinAsync(address, args.Id, args.Bundle, plugin, wantGrpc: false).ConfigureAwait(false) is not null)
        {
            StartAction.WriteAddress(args.Bundle, address, output.Format(address, grpcSocket: null), stdout);
            return 0;
        }

        File.Delete(marker); // a dead daemon's
        try
        {
            await SpawnDaemonAsync(args, plugin, group, options).ConfigureAwait(false);
        }
        catch
        {
            File.Delete(marker);
            throw;
        }

        StartAction.WriteAddress(args.Bundle, address, output.Format(address, grpcSocket: null), stdout);
        return 0;
    }

    private static async Task SpawnDaemonAsync(ShimArguments args, string plugin, string group, byte[] options)
    {
        var info = new ProcessStartInfo
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            CreateNoWindow = true,
            WorkingDirectory = args.Bundle,
        };
        string self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell our own executable");
        info.FileName = self;
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            info.ArgumentList.Add(typeof(PipeStart).Assembly.Location); // run as `dotnet pluggableshim-daemon.dll`
        }

        foreach (string argument in args.ToDaemonArguments(plugin, group, listenFd: -1, readyFd: -1))
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment[StartAction.OptionsVariable] = Convert.ToBase64String(options);
        if (OperatingSystem.IsWindows())
        {
            // Out of containerd's console process group (its Ctrl+C and Ctrl+Break are not ours),
            // and holding none of containerd's handles.
            info.CreateNewProcessGroup = true;
            WindowsHandles.StopInheritingStandardHandles();
        }

        Process? started;
        try
        {
            started = Process.Start(info);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new ShimStartException($"cannot start {self}: {ex.Message}");
        }

        using Process daemon = started ?? throw new ShimStartException($"cannot start {self}");
        daemon.StandardInput.Close();
        var errors = new StringBuilder();
        daemon.ErrorDataReceived += (_, e) =>
        {
            lock (errors)
            {
                errors.AppendLine(e.Data);
            }
        };
        daemon.BeginErrorReadLine();
        try
        {
            string? answer;
            using (var timeout = new CancellationTokenSource(ReadyTimeout))
            {
                try
                {
                    answer = await daemon.StandardOutput.ReadLineAsync(timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    throw new ShimStartException($"shim daemon did not become ready within {ReadyTimeout.TotalSeconds:0} s");
                }
            }

            if (answer != StartAction.ReadyMessage.TrimEnd('\n'))
            {
                if (answer is null && daemon.WaitForExit(TimeSpan.FromSeconds(2)))
                {
                    // The timed wait does not wait for the stderr handler; this one does, so the
                    // daemon's last error line is in `errors` before we read it.
                    daemon.WaitForExit();
                    lock (errors)
                    {
                        answer = errors.ToString().Trim();
                    }
                }

                throw new ShimStartException(answer is { Length: > 0 }
                    ? answer.Trim()
                    : "shim daemon exited during start-up (see the shim's log)");
            }
        }
        catch
        {
            // A daemon that failed or hangs must not linger, holding a pipe or a reservation.
            try
            {
                daemon.Kill(entireProcessTree: true);
                using var reaped = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await daemon.WaitForExitAsync(reaped.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException or System.ComponentModel.Win32Exception)
            {
                // Gone already, or beyond reach: start's error says what went wrong first.
            }

            throw;
        }
        finally
        {
            daemon.CancelErrorRead();
        }
    }
}
