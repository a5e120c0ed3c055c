using PluggableShim.Abstractions;
using PluggableShim.Host.Cli;

namespace PluggableShim.Host;

internal static class Program
{
    public static async Task<int> Main(string[] argv)
    {
        ShimArguments args;
        try
        {
            args = ShimArguments.Parse(argv);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException)
        {
            await Console.Error.WriteLineAsync(ex.Message).ConfigureAwait(false);
            return 2;
        }

        if (args.Version)
        {
            Console.Out.WriteLine($"{Path.GetFileName(InvokedAs.Get())}:\n  Version: {typeof(Program).Assembly.GetName().Version}");
            return 0;
        }

        try
        {
            return args.Action switch
            {
                "start" => await StartAction.RunAsync(args, Console.OpenStandardInput(), Console.Out).ConfigureAwait(false),
                "delete" => DeleteAction.Run(args, Console.OpenStandardOutput(), Console.Error),
#if LAUNCHER
                // The native launcher has no runtime to host plugins in: the daemon is its own binary.
                "daemon" => Usage($"the daemon is {StartAction.DaemonBinary}, beside this launcher"),
#else
                "daemon" => await DaemonAction.RunAsync(args).ConfigureAwait(false),
#endif
                "" => Usage("no action given"),
                _ => Usage($"unknown action \"{args.Action}\""),
            };
        }
        catch (Exception ex) when (ex is ShimException or ShimStartException or Plugins.PluginLoadException
                                       or InvalidOperationException or InvalidDataException or IOException
                                       or UnauthorizedAccessException or System.Net.Sockets.SocketException or TimeoutException)
        {
            // containerd shows start's combined output to the user: one line, no stack trace.
            // No trailing newline: containerd appends ": exit status 1" to what we print.
            await Console.Error.WriteAsync($"{args.Action}: {ex.Message.ReplaceLineEndings(" ").Trim()}").ConfigureAwait(false);
            return 1;
        }
    }

    private static int Usage(string problem)
    {
        Console.Error.WriteLine(
            $"{problem}\nusage: {Path.GetFileName(InvokedAs.Get())} -namespace NS -address ADDR -id ID [-bundle DIR] [-debug] start|delete");
        return 2;
    }
}
