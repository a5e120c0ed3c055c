using System.Globalization;
using PluggableShim.Host.Cli;
using PluggableShim.Ttrpc;

namespace PluggableShim.Host.Windows;

/// <summary>
/// The daemon's side of the portable path: it creates its own pipe (nothing was handed over),
/// leaves the group's marker while it serves, and tells <c>start</c> on stdout when it does.
/// </summary>
internal sealed class PipeDaemonEndpoint(ShimArguments args)
{
    private readonly string _group = args.Group.Length > 0 ? args.Group : args.Id;
    private TtrpcListener? _listener;

    /// <summary>The marker file, the counterpart of a Unix daemon's socket path: the group lock is beside it.</summary>
    public string MarkerPath => PortableHost.MarkerPath(args.Address, args.Namespace, _group);

    public string Address => PortableHost.PipeAddress(args.Namespace, _group);

    /// <summary>Creates the pipe (clients can connect from here on) and the marker.</summary>
    public TtrpcListener Listen()
    {
        _listener = TtrpcListener.ListenNamedPipe(PortableHost.PipeName(args.Namespace, _group), NamedPipeAccess.Administrators);
        File.WriteAllText(MarkerPath, Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        return _listener;
    }

    /// <summary>
    /// Under the group lock, once the daemon has decided to exit: no new client reaches us, so a
    /// later start spawns a successor. Connections already open keep being served.
    /// </summary>
    public void Withdraw() => _listener?.DisposeAsync().AsTask().GetAwaiter().GetResult();

    /// <summary>
    /// The ready line, or one line saying why not, on stdout (start's pipe). Afterwards nothing
    /// may write to stdout or stderr: start has gone, and its pipes with it.
    /// </summary>
    public static void SignalReady(string? failure)
    {
        using (Stream stdout = Console.OpenStandardOutput())
        {
            byte[] line = System.Text.Encoding.UTF8.GetBytes(
                failure is null ? StartAction.ReadyMessage : failure.ReplaceLineEndings(" ") + "\n");
            try
            {
                stdout.Write(line);
                stdout.Flush();
            }
            catch (IOException)
            {
                // start gave up waiting and closed its end; it has reported the failure itself.
            }
        }

        Console.SetOut(TextWriter.Null);
        Console.SetError(TextWriter.Null);
    }
}
