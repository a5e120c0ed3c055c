namespace PluggableShim.Host.Cli;

/// <summary>
/// The command line containerd gives a shim, Go-flag style:
/// <c>-namespace NS -address A -publish-binary B -id ID [-debug] [-bundle B] ACTION</c>.
/// Flags take <c>-f v</c>, <c>-f=v</c> and <c>--f</c> forms, as Go's flag package does.
/// </summary>
internal sealed record ShimArguments
{
    public string Namespace { get; init; } = string.Empty;
    public string Address { get; init; } = string.Empty;
    public string PublishBinary { get; init; } = string.Empty;
    public string Id { get; init; } = string.Empty;
    public string Bundle { get; init; } = string.Empty;
    public string Socket { get; init; } = string.Empty;
    public bool Debug { get; init; }
    public bool Version { get; init; }
    public string Action { get; init; } = string.Empty;

    // Set by `start` for the daemon it spawns; not part of containerd's interface.
    public string Plugin { get; init; } = string.Empty;
    public string Group { get; init; } = string.Empty;
    public int ListenFd { get; init; } = -1;
    public int ReadyFd { get; init; } = -1;

    /// <summary>Where the daemon serves gRPC besides ttrpc; empty for ttrpc only.</summary>
    public string GrpcSocket { get; init; } = string.Empty;

    private static readonly HashSet<string> BoolFlags = ["debug", "v", "version"];

    public static ShimArguments Parse(IReadOnlyList<string> args)
    {
        var result = new ShimArguments();
        int i = 0;
        for (; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg == "--")
            {
                i++;
                break;
            }

            if (arg.Length < 2 || arg[0] != '-')
            {
                break;
            }

            string name = arg.TrimStart('-');
            string? value = null;
            int eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
            }
            else if (!BoolFlags.Contains(name))
            {
                if (i + 1 >= args.Count)
                {
                    throw new ArgumentException($"flag needs an argument: -{name}");
                }

                value = args[++i];
            }

            result = Apply(result, name, value);
        }

        if (i < args.Count)
        {
            result = result with { Action = args[i] };
        }

        return result;
    }

    private static ShimArguments Apply(ShimArguments a, string name, string? value) => name switch
    {
        "namespace" => a with { Namespace = value! },
        "address" => a with { Address = value! },
        "publish-binary" => a with { PublishBinary = value! },
        "id" => a with { Id = value! },
        "bundle" => a with { Bundle = value! },
        "socket" => a with { Socket = value! },
        "debug" => a with { Debug = value is null || bool.Parse(value) },
        "v" or "version" => a with { Version = true },
        "plugin" => a with { Plugin = value! },
        "group" => a with { Group = value! },
        "listen-fd" => a with { ListenFd = int.Parse(value!, System.Globalization.CultureInfo.InvariantCulture) },
        "ready-fd" => a with { ReadyFd = int.Parse(value!, System.Globalization.CultureInfo.InvariantCulture) },
        "grpc-socket" => a with { GrpcSocket = value! },
        _ => throw new ArgumentException($"flag provided but not defined: -{name}"),
    };

    /// <summary>The daemon's arguments: ours plus the resolved plugin, the group and inherited descriptors.</summary>
    public IReadOnlyList<string> ToDaemonArguments(string plugin, string group, int listenFd, int readyFd)
    {
        var list = new List<string>
        {
            "-namespace", Namespace, "-address", Address, "-publish-binary", PublishBinary, "-id", Id,
            "-bundle", Bundle, "-plugin", plugin, "-group", group, "-listen-fd", listenFd.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-ready-fd", readyFd.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (Socket.Length > 0)
        {
            list.Add("-socket");
            list.Add(Socket);
        }

        if (Debug)
        {
            list.Add("-debug");
        }

        if (GrpcSocket.Length > 0)
        {
            list.Add("-grpc-socket");
            list.Add(GrpcSocket);
        }

        list.Add("daemon");
        return list;
    }
}
