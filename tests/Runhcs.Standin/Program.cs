using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using PluggableShim.Runhcs.Standin;

// A stand-in for runhcs.exe on Linux. It mirrors runhcs's command line (global flags --debug,
// --log, --log-format, --owner, --root; create, start, exec, kill, delete, pause, resume, state,
// ps, resize-tty), its errors and its limits (kill reaches only the init process; exec needs
// --detach), over plain host processes. Like runhcs, create leaves a "shim" process behind that
// inherits create's stdio, runs the container's process once started, and exits with its exit code.
// State lives in files under $RUNHCS_STANDIN_STATE (default /tmp/runhcs-standin)/ROOT/ID.
return Standin.Run(args);

namespace PluggableShim.Runhcs.Standin
{
    internal static class Standin
    {
        /// <summary>Annotation whose value (a JSON array of strings) the shim writes verbatim to --shim-log.</summary>
        public const string RawLogAnnotation = "runhcs-standin/shim-log-lines";

        private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(10);

        public static int Run(string[] args)
        {
            var globals = new Globals();
            int index = 0;
            try
            {
                while (index < args.Length && args[index].StartsWith("--", StringComparison.Ordinal))
                {
                    index = globals.Parse(args, index);
                }
            }
            catch (StandinException ex)
            {
                Console.Error.WriteLine(ex.Message);
                return 1;
            }

            if (index >= args.Length)
            {
                Console.Error.WriteLine("runhcs stand-in: no command");
                return 1;
            }

            using var log = new StandinLog(globals.Log, globals.Format == "json", globals.Debug);
            string command = args[index];
            string[] rest = args[(index + 1)..];
            log.Debug("command", ("command", command), ("args", string.Join(' ', rest)), ("owner", globals.Owner));
            try
            {
                var commands = new Commands(globals, log);
                return command switch
                {
                    "create" => commands.Create(rest),
                    "start" => commands.Start(rest),
                    "exec" => commands.Exec(rest),
                    "kill" => commands.Kill(rest),
                    "delete" => commands.Delete(rest),
                    "pause" => commands.Pause(rest, pause: true),
                    "resume" => commands.Pause(rest, pause: false),
                    "state" => commands.State(rest),
                    "ps" => commands.Ps(rest),
                    "resize-tty" => commands.ResizeTty(rest),
                    "shim" => commands.Shim(rest),
                    _ => throw new StandinException($"No help topic for '{command}'"),
                };
            }
            catch (StandinException ex)
            {
                // runhcs prints its error and logs it at error level (its fatal writer does both).
                log.Error(ex.Message);
                Console.Error.WriteLine(ex.Message);
                return 1;
            }
        }

        public static TimeSpan Ready => ReadyTimeout;
    }

    internal sealed class StandinException(string message) : Exception(message);

    internal sealed class Globals
    {
        public bool Debug { get; private set; }

        public string? Log { get; private set; }

        public string Format { get; private set; } = "text";

        public string Owner { get; private set; } = "runhcs";

        public string Root { get; private set; } = "default";

        public int Parse(string[] args, int index)
        {
            string flag = args[index];
            string? inline = null;
            int eq = flag.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                inline = flag[(eq + 1)..];
                flag = flag[..eq];
            }

            if (flag == "--debug")
            {
                Debug = true;
                return index + 1;
            }

            string value = inline ?? (index + 1 < args.Length
                ? args[++index]
                : throw new StandinException($"flag needs an argument: {flag}"));
            switch (flag)
            {
                case "--log":
                    Log = value;
                    break;
                case "--log-format":
                    Format = value is "text" or "json" ? value : throw new StandinException($"unknown log-format \"{value}\"");
                    break;
                case "--owner":
                    Owner = value;
                    break;
                case "--root":
                    Root = value;
                    break;
                default:
                    throw new StandinException($"flag provided but not defined: {flag}");
            }

            return index + 1;
        }

        /// <summary>The flags a shim process is started with, as runhcs passes them on.</summary>
        public IEnumerable<string> ForShim()
        {
            if (Debug)
            {
                yield return "--debug";
            }

            yield return "--log-format";
            yield return Format;
            yield return "--root";
            yield return Root;
        }

        public string StateRoot()
        {
            string baseDirectory = Environment.GetEnvironmentVariable("RUNHCS_STANDIN_STATE") is { Length: > 0 } given
                ? given
                : Path.Combine(Path.GetTempPath(), "runhcs-standin");
            string key = string.Concat(Root.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
            return Path.Combine(baseDirectory, key);
        }
    }

    /// <summary>A container's state, kept as one file per fact so that shim and commands never race on one file.</summary>
    internal sealed class ContainerState(string directory, string id)
    {
        public string Id => id;

        public string Directory => directory;

        public bool Exists => System.IO.Directory.Exists(directory);

        public string Bundle => Read("bundle") ?? string.Empty;

        public int ShimPid => Int("shim.pid");

        public int InitPid => Int("init.pid");

        public string ExecDirectory => Path.Combine(directory, "execs");

        public string Status
        {
            get
            {
                if (!Native.IsAlive(ShimPid))
                {
                    return "stopped";
                }

                if (Has("paused"))
                {
                    return "paused";
                }

                return InitPid > 0 ? "running" : "created";
            }
        }

        public string PathOf(string name) => System.IO.Path.Combine(directory, name);

        public bool Has(string name) => File.Exists(PathOf(name));

        public string? Read(string name) => Has(name) ? File.ReadAllText(PathOf(name)).Trim() : null;

        public int Int(string name) =>
            int.TryParse(Read(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) ? value : 0;

        /// <summary>Written to a temporary name and renamed, so that a reader never sees half a value.</summary>
        public void Write(string name, string value)
        {
            string temporary = PathOf(name + ".tmp" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
            File.WriteAllText(temporary, value);
            File.Move(temporary, PathOf(name), overwrite: true);
        }

        /// <summary>Live exec shims and the pids of their processes.</summary>
        public IEnumerable<(int Shim, int Process)> Execs()
        {
            if (!System.IO.Directory.Exists(ExecDirectory))
            {
                yield break;
            }

            foreach (string file in System.IO.Directory.GetFiles(ExecDirectory, "*.pid"))
            {
                int shim = int.Parse(System.IO.Path.GetFileNameWithoutExtension(file), CultureInfo.InvariantCulture);
                string text;
                try
                {
                    text = File.ReadAllText(file).Trim();
                }
                catch (IOException)
                {
                    continue;
                }

                if (Native.IsAlive(shim) && int.TryParse(text, CultureInfo.InvariantCulture, out int process))
                {
                    yield return (shim, process);
                }
            }
        }
    }

    internal sealed class Commands(Globals globals, StandinLog log)
    {
        public int Create(string[] args)
        {
            var (positional, flags) = Split(args, ["bundle", "b", "pid-file", "shim-log", "vm-log", "vm-console"], []);
            string id = One(positional, "create");
            string bundle = Flag(flags, "bundle") ?? Flag(flags, "b") ?? System.IO.Directory.GetCurrentDirectory();
            ContainerState state = StateOf(id);
            if (state.Exists)
            {
                throw new StandinException($"ID '{id}' already exists");
            }

            using JsonDocument spec = ReadSpec(bundle);
            JsonElement root = spec.RootElement;
            bool lcow = root.TryGetProperty("linux", out JsonElement linux) && linux.ValueKind == JsonValueKind.Object;
            if (!root.TryGetProperty("windows", out JsonElement windows) || windows.ValueKind != JsonValueKind.Object
                || !windows.TryGetProperty("layerFolders", out JsonElement layers) || layers.ValueKind != JsonValueKind.Array
                || layers.GetArrayLength() == 0)
            {
                throw new StandinException("invalid spec: windows.layerFolders is missing or empty");
            }

            bool hyperv = windows.TryGetProperty("hyperv", out JsonElement h) && h.ValueKind == JsonValueKind.Object;
            if (lcow && !hyperv)
            {
                throw new StandinException("invalid spec: a Linux container (LCOW) needs windows.hyperv");
            }

            if (!root.TryGetProperty("process", out JsonElement process) || !process.TryGetProperty("args", out JsonElement a)
                || a.ValueKind != JsonValueKind.Array || a.GetArrayLength() == 0)
            {
                throw new StandinException("invalid spec: process.args is empty");
            }

            System.IO.Directory.CreateDirectory(state.Directory);
            state.Write("bundle", Path.GetFullPath(bundle));
            state.Write("created", DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture));
            if ((lcow || hyperv) && Flag(flags, "vm-log") is { } vmLog)
            {
                using var vm = new StandinLog(vmLog, globals.Format == "json", globals.Debug);
                vm.Info("utility VM started", ("vm", id + "@vm"), ("lcow", lcow));
            }

            List<string> shimArgs = [.. globals.ForShim()];
            if (Flag(flags, "shim-log") is { } shimLog)
            {
                shimArgs.InsertRange(0, ["--log", shimLog]);
            }

            shimArgs.AddRange(["shim", id]);
            int pid = LaunchShim(state, shimArgs, Path.Combine(state.Directory, "ready"));
            state.Write("shim.pid", pid.ToString(CultureInfo.InvariantCulture));
            WritePidFile(Flag(flags, "pid-file"), pid);
            log.Info("created container", ("id", id), ("shim", pid), ("layers", layers.GetArrayLength()));
            return 0;
        }

        public int Start(string[] args)
        {
            ContainerState state = Existing(One(Split(args, [], []).Positional, "start"));
            if (state.Status != "created")
            {
                throw new StandinException(state.Status == "stopped"
                    ? "container is stopped"
                    : $"container {state.Id} is not created (it is {state.Status})");
            }

            // Like runhcs, start only tells the shim to go: the container leaves "created" a moment later.
            state.Write("start", "1");
            return 0;
        }

        public int Exec(string[] args)
        {
            var (positional, flags) = Split(args, ["process", "p", "pid-file", "shim-log"], ["detach", "d"]);
            ContainerState state = Existing(One(positional, "exec"));
            string? processFile = Flag(flags, "process") ?? Flag(flags, "p");
            if (processFile is null)
            {
                throw new StandinException("exec: --process is required");
            }

            if (!flags.ContainsKey("detach") && !flags.ContainsKey("d"))
            {
                throw new StandinException("exec: the stand-in runs only detached execs (--detach)");
            }

            RequireRunning(state);
            System.IO.Directory.CreateDirectory(state.ExecDirectory);
            List<string> shimArgs = [.. globals.ForShim()];
            if (Flag(flags, "shim-log") is { } shimLog)
            {
                shimArgs.InsertRange(0, ["--log", shimLog]);
            }

            shimArgs.AddRange(["shim", "--exec", Path.GetFullPath(processFile), state.Id]);
            int pid = LaunchShim(state, shimArgs, readyFile: null);
            WritePidFile(Flag(flags, "pid-file"), pid);
            return 0;
        }

        public int Kill(string[] args)
        {
            var (positional, _) = Split(args, [], ["all", "a"]);
            if (positional.Count != 2)
            {
                throw new StandinException("kill: expected <container-id> <signal>");
            }

            ContainerState state = Existing(positional[0]);
            int signal = ParseSignal(positional[1]);
            switch (state.Status)
            {
                case "stopped":
                    throw new StandinException("container is stopped");
                case "created":
                    state.Write("killed", signal.ToString(CultureInfo.InvariantCulture));
                    break;
                default:
                    // Only the init process: runhcs has no way to reach the others.
                    if (Native.Kill(state.InitPid, signal) != 0)
                    {
                        throw new StandinException("container is stopped");
                    }

                    break;
            }

            log.Info("signalled container", ("id", state.Id), ("signal", signal));
            return 0;
        }

        public int Delete(string[] args)
        {
            var (positional, flags) = Split(args, [], ["force", "f"]);
            ContainerState state = Existing(One(positional, "delete"));
            bool force = flags.ContainsKey("force") || flags.ContainsKey("f");
            if (state.Status != "stopped" && !force)
            {
                throw new StandinException($"cannot delete container {state.Id} that is not stopped without --force");
            }

            foreach ((int shim, _) in state.Execs().ToList())
            {
                Native.Kill(-shim, 9);
            }

            // Never kill(0): a container deleted before its start has no init pid, and pid 0 is our own process group (the shim's).
            if (state.InitPid > 0)
            {
                Native.Kill(state.InitPid, 9);
            }

            Native.Kill(-state.ShimPid, 9);
            Native.Kill(state.ShimPid, 9);
            var watch = Stopwatch.StartNew();
            while (Native.IsAlive(state.ShimPid) && watch.Elapsed < TimeSpan.FromSeconds(5))
            {
                Thread.Sleep(5);
            }

            System.IO.Directory.Delete(state.Directory, recursive: true);
            log.Info("deleted container", ("id", state.Id));
            return 0;
        }

        public int Pause(string[] args, bool pause)
        {
            ContainerState state = Existing(One(Split(args, [], []).Positional, pause ? "pause" : "resume"));
            string status = state.Status;
            if (pause && status != "running")
            {
                throw new StandinException(status == "stopped" ? "container is stopped" : $"container {state.Id} is not running");
            }

            if (!pause && status != "paused")
            {
                throw new StandinException(status == "stopped" ? "container is stopped" : $"container {state.Id} is not paused");
            }

            foreach (int pid in Pids(state))
            {
                Native.Kill(pid, pause ? 19 : 18); // SIGSTOP, SIGCONT
            }

            if (pause)
            {
                state.Write("paused", "1");
            }
            else
            {
                File.Delete(state.PathOf("paused"));
            }

            return 0;
        }

        public int State(string[] args)
        {
            ContainerState state = Existing(One(Split(args, [], []).Positional, "state"));
            var document = new Dictionary<string, object>
            {
                ["ociVersion"] = "1.0.2",
                ["id"] = state.Id,
                ["pid"] = state.ShimPid,
                ["status"] = state.Status,
                ["bundle"] = state.Bundle,
                ["rootfs"] = Path.Combine(state.Bundle, "rootfs"),
                ["created"] = state.Read("created") ?? string.Empty,
                ["owner"] = globals.Owner,
                ["annotations"] = new Dictionary<string, object>(),
            };
            Console.Out.WriteLine(JsonSerializer.Serialize(document, StandinJson.Default.DictionaryStringObject));
            return 0;
        }

        public int Ps(string[] args)
        {
            var (positional, flags) = Split(args, ["format", "f"], []);
            ContainerState state = Existing(One(positional, "ps"));
            string format = Flag(flags, "format") ?? Flag(flags, "f") ?? "json";
            if (format != "json")
            {
                throw new StandinException("invalid format option");
            }

            RequireRunning(state);
            List<int> pids = [.. Pids(state)];
            Console.Out.WriteLine(pids.Count == 0 ? "null" : JsonSerializer.Serialize(pids, StandinJson.Default.ListInt32));
            return 0;
        }

        public int ResizeTty(string[] args)
        {
            var (positional, flags) = Split(args, ["pid", "p"], []);
            if (positional.Count != 3)
            {
                throw new StandinException("resize-tty: expected <container-id> <width> <height>");
            }

            ContainerState state = Existing(positional[0]);
            foreach (string size in positional.Skip(1))
            {
                if (!int.TryParse(size, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n is < 1 or > 65535)
                {
                    throw new StandinException($"invalid argument \"{size}\": must be 1..65535");
                }
            }

            RequireRunning(state);
            log.Info("resized console", ("width", positional[1]), ("height", positional[2]),
                ("pid", Flag(flags, "pid") ?? Flag(flags, "p") ?? "init"));
            return 0;
        }

        /// <summary>The hidden shim: holds the stdio it inherited, runs the process, exits with its code.</summary>
        public int Shim(string[] args)
        {
            var (positional, flags) = Split(args, ["exec"], []);
            ContainerState state = Existing(One(positional, "shim"));
            Native.SetSid(); // its own process group, so that the plugin can signal an exec's shim and process at once
            using var registrations = new CompositeRegistration();
            string? execFile = Flag(flags, "exec");
            using JsonDocument spec = execFile is null ? ReadSpec(state.Bundle) : JsonDocument.Parse(File.ReadAllText(execFile));
            JsonElement process = execFile is null ? spec.RootElement.GetProperty("process") : spec.RootElement;
            if (execFile is null)
            {
                File.WriteAllText(state.PathOf("ready"), "1");
                while (!state.Has("start"))
                {
                    if (state.Int("killed") is > 0 and var signal)
                    {
                        log.Info("killed before start", ("signal", signal));
                        return 128 + signal;
                    }

                    Thread.Sleep(5);
                }
            }

            Process child;
            try
            {
                child = Spawn(process);
            }
            catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                log.Error($"cannot start the process: {ex.Message}");
                if (execFile is not null)
                {
                    File.WriteAllText(Path.Combine(state.ExecDirectory, $"{Environment.ProcessId}.err"), ex.Message);
                }

                return 127;
            }

            string? tail = null;
            using (child)
            {
                string pid = child.Id.ToString(CultureInfo.InvariantCulture);
                if (execFile is null)
                {
                    state.Write("init.pid", pid);
                    tail = WriteRawLines(spec.RootElement);
                }
                else
                {
                    File.WriteAllText(Path.Combine(state.ExecDirectory, $"{Environment.ProcessId}.pid"), pid);
                }

                log.Info("process started", ("pid", child.Id), ("exec", execFile is not null));
                child.WaitForExit();
                log.Info("process exited", ("pid", child.Id), ("exitCode", child.ExitCode));
                if (tail is not null)
                {
                    log.Raw(tail); // an unterminated last line goes last, so that it ends the stream unfinished
                }

                return child.ExitCode; // .NET reports a signalled child as 128 + signal, as containerd wants
            }
        }

        /// <summary>Writes the annotation's lines; returns a last line without a newline, to be written at the end.</summary>
        private string? WriteRawLines(JsonElement spec)
        {
            if (spec.TryGetProperty("annotations", out JsonElement annotations) && annotations.ValueKind == JsonValueKind.Object
                && annotations.TryGetProperty(Standin.RawLogAnnotation, out JsonElement value)
                && value.ValueKind == JsonValueKind.String)
            {
                using JsonDocument document = JsonDocument.Parse(value.GetString()!);
                List<string> lines = [.. document.RootElement.EnumerateArray().Select(l => l.GetString() ?? string.Empty)];
                string? tail = lines.Count > 0 && !lines[^1].EndsWith('\n') ? lines[^1] : null;
                foreach (string line in tail is null ? lines : lines[..^1])
                {
                    log.Raw(line);
                }

                return tail;
            }

            return null;
        }

        private static Process Spawn(JsonElement process)
        {
            string[] args = [.. process.GetProperty("args").EnumerateArray().Select(a => a.GetString() ?? string.Empty)];
            var info = new ProcessStartInfo(args[0]) { UseShellExecute = false };
            foreach (string argument in args.Skip(1))
            {
                info.ArgumentList.Add(argument);
            }

            if (process.TryGetProperty("env", out JsonElement env) && env.ValueKind == JsonValueKind.Array)
            {
                foreach (string entry in env.EnumerateArray().Select(e => e.GetString() ?? string.Empty))
                {
                    int eq = entry.IndexOf('=', StringComparison.Ordinal);
                    if (eq > 0)
                    {
                        info.Environment[entry[..eq]] = entry[(eq + 1)..];
                    }
                }
            }

            string cwd = process.TryGetProperty("cwd", out JsonElement c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : "/";
            info.WorkingDirectory = System.IO.Directory.Exists(cwd) ? cwd : "/";
            return Process.Start(info) ?? throw new InvalidOperationException($"cannot start {args[0]}");
        }

        /// <summary>Starts a shim with this process's stdio and waits until it is ready or dead.</summary>
        private static int LaunchShim(ContainerState state, List<string> shimArgs, string? readyFile)
        {
            int shim = Native.Spawn(Environment.ProcessPath!, shimArgs);
            string ready = readyFile ?? Path.Combine(state.ExecDirectory, $"{shim}.pid");
            var watch = Stopwatch.StartNew();
            while (!File.Exists(ready))
            {
                if (Native.WaitPid(shim, out int status, Native.WNoHang) == shim)
                {
                    string error = Path.Combine(state.ExecDirectory, $"{shim}.err");
                    throw new StandinException(File.Exists(error)
                        ? $"failed to start the process: {File.ReadAllText(error)}"
                        : $"shim exited {(status >> 8) & 0xFF} before it was ready");
                }

                if (watch.Elapsed > Standin.Ready)
                {
                    _ = Native.Kill(-shim, 9) == 0 || Native.Kill(shim, 9) == 0; // the shim leads its own group
                    throw new StandinException("shim was not ready in time");
                }

                Thread.Sleep(2);
            }

            return shim;
        }

        private static IEnumerable<int> Pids(ContainerState state)
        {
            if (Native.IsAlive(state.InitPid))
            {
                yield return state.InitPid;
            }

            foreach ((_, int process) in state.Execs())
            {
                if (Native.IsAlive(process))
                {
                    yield return process;
                }
            }
        }

        private static void RequireRunning(ContainerState state)
        {
            string status = state.Status;
            if (status == "stopped")
            {
                throw new StandinException("container is stopped");
            }

            if (status != "running")
            {
                throw new StandinException($"container {state.Id} is not running (it is {status})");
            }
        }

        private static int ParseSignal(string text)
        {
            if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int number) && number is > 0 and < 65)
            {
                return number;
            }

            string name = text.ToUpperInvariant();
            name = name.StartsWith("SIG", StringComparison.Ordinal) ? name[3..] : name;
            return name switch
            {
                "HUP" => 1,
                "INT" => 2,
                "QUIT" => 3,
                "KILL" => 9,
                "USR1" => 10,
                "USR2" => 12,
                "TERM" => 15,
                _ => throw new StandinException($"unknown signal \"{text}\""),
            };
        }

        private static void WritePidFile(string? path, int pid)
        {
            if (path is not null)
            {
                File.WriteAllText(path, pid.ToString(CultureInfo.InvariantCulture));
            }
        }

        private static JsonDocument ReadSpec(string bundle)
        {
            string path = Path.Combine(bundle, "config.json");
            try
            {
                return JsonDocument.Parse(File.ReadAllText(path));
            }
            catch (Exception ex) when (ex is IOException or JsonException)
            {
                throw new StandinException($"invalid spec {path}: {ex.Message}");
            }
        }

        private ContainerState StateOf(string id) => new(Path.Combine(globals.StateRoot(), id), id);

        private ContainerState Existing(string id)
        {
            ContainerState state = StateOf(id);
            return state.Exists ? state : throw new StandinException($"ID '{id}' was not found");
        }

        private static string One(List<string> positional, string command) =>
            positional.Count == 1 ? positional[0] : throw new StandinException($"{command}: expected exactly one <container-id>");

        private static string? Flag(Dictionary<string, string?> flags, string name) =>
            flags.TryGetValue(name, out string? value) ? value : null;

        private static (List<string> Positional, Dictionary<string, string?> Flags) Split(
            string[] args, string[] valued, string[] switches)
        {
            var positional = new List<string>();
            var flags = new Dictionary<string, string?>(StringComparer.Ordinal);
            for (int i = 0; i < args.Length; i++)
            {
                string arg = args[i];
                if (!arg.StartsWith('-') || arg == "-")
                {
                    positional.Add(arg);
                    continue;
                }

                string name = arg.TrimStart('-');
                string? inline = null;
                int eq = name.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0)
                {
                    inline = name[(eq + 1)..];
                    name = name[..eq];
                }

                if (switches.Contains(name))
                {
                    flags[name] = null;
                }
                else if (valued.Contains(name))
                {
                    flags[name] = inline ?? (i + 1 < args.Length ? args[++i] : throw new StandinException($"flag needs an argument: -{name}"));
                }
                else
                {
                    throw new StandinException($"flag provided but not defined: -{name}");
                }
            }

            return (positional, flags);
        }
    }

    /// <summary>A shim ignores the terminating signals that reach its group: they are meant for its process.</summary>
    internal sealed class CompositeRegistration : IDisposable
    {
        private readonly List<PosixSignalRegistration> _registrations =
            [.. new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGHUP, PosixSignal.SIGQUIT }
                .Select(s => PosixSignalRegistration.Create(s, context => context.Cancel = true))];

        public void Dispose() => _registrations.ForEach(r => r.Dispose());
    }
}
