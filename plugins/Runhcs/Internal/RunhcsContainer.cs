using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Runhcs.Internal;

/// <summary>
/// One runhcs container: its init process (created by <c>runhcs create</c>), its execs, and the
/// log listeners runhcs's shims write to in debug mode.
/// </summary>
internal sealed class RunhcsContainer : IRuntimeContainer
{
    private static readonly TimeSpan DeleteTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan FirstPoll = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan LongestPoll = TimeSpan.FromMilliseconds(100);

    private readonly string _bundle;
    private readonly ILogger _logger;
    private readonly LogForwarder? _shimLog;
    private readonly LogForwarder? _vmLog;
    private readonly RunhcsProcess _init;
    private readonly Lock _gate = new();

    // Guarded by _gate.
    private readonly List<RunhcsProcess> _execs = [];
    private bool _disposed;

    public RunhcsContainer(
        string id, string bundle, RunhcsCli cli, LogForwarder? shimLog, LogForwarder? vmLog, ILogger logger)
    {
        Id = id;
        _bundle = bundle;
        Cli = cli;
        _shimLog = shimLog;
        _vmLog = vmLog;
        _logger = logger;
        _init = new RunhcsProcess(this, string.Empty, processFile: null, logger);
    }

    public string Id { get; }

    public RunhcsCli Cli { get; }

    public IRuntimeProcess Init => _init;

    private string InitPidFile => Path.Combine(_bundle, "runhcs-init.pid");

    /// <summary><c>runhcs create</c>: the container and its shim exist afterwards, not yet started.</summary>
    public async Task CreateAsync(CancellationToken cancellationToken)
    {
        ExitWatcher.EnsureSubreaper(_logger);
        File.Delete(InitPidFile); // a retried Create must not read the previous attempt's pid
        List<string> arguments = [Id, "--bundle", _bundle, "--pid-file", InitPidFile];
        if (_shimLog is not null)
        {
            arguments.AddRange(["--shim-log", _shimLog.Address]);
        }

        if (_vmLog is not null)
        {
            arguments.AddRange(["--vm-log", _vmLog.Address]);
        }

        Process runhcs = await Cli.RunWithStdioAsync("create", arguments, Cli.Settings.CreateTimeout, cancellationToken)
            .ConfigureAwait(false);
        int pid;
        try
        {
            pid = ReadPidFile(InitPidFile, "create");
        }
        catch
        {
            runhcs.Dispose();
            throw;
        }

        _init.Created(runhcs, pid);
    }

    /// <summary><c>runhcs start</c>, then a bounded wait until the container has left <c>created</c>.</summary>
    public async Task StartInitAsync(CancellationToken cancellationToken)
    {
        await Cli.RunAsync("start", [Id], cancellationToken).ConfigureAwait(false);
        var watch = Stopwatch.StartNew();
        TimeSpan pause = FirstPoll;
        while (true)
        {
            string status = await StatusAsync(cancellationToken).ConfigureAwait(false);
            if (status != "created")
            {
                return;
            }

            if (watch.Elapsed > Cli.Settings.StartTimeout)
            {
                throw new RunhcsException("start", 0,
                    $"runhcs start: {Id} was still created {Cli.Settings.StartTimeout.TotalSeconds:0} s after runhcs start returned");
            }

            // Short polls first (a container usually runs within milliseconds), never a whole second.
            await Task.Delay(pause, cancellationToken).ConfigureAwait(false);
            pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, LongestPoll.Ticks));
        }
    }

    /// <summary>The container's status as <c>runhcs state</c> reports it.</summary>
    public async Task<string> StatusAsync(CancellationToken cancellationToken)
    {
        string json = await Cli.RunAsync("state", [Id], cancellationToken).ConfigureAwait(false);
        try
        {
            using JsonDocument state = JsonDocument.Parse(json);
            return state.RootElement.TryGetProperty("status", out JsonElement status) && status.ValueKind == JsonValueKind.String
                ? status.GetString()!
                : throw new RunhcsException("state", 0, $"runhcs state: no status in {Clip(json)}");
        }
        catch (JsonException ex)
        {
            throw new RunhcsException("state", 0, $"runhcs state: not JSON ({ex.Message}): {Clip(json)}");
        }
    }

    public Task<IRuntimeProcess> CreateExecAsync(CreateExecRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        try
        {
            using JsonDocument spec = JsonDocument.Parse(request.ProcessSpecJson);
            if (spec.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidArgumentException("exec process spec must be a JSON object");
            }
        }
        catch (JsonException ex)
        {
            throw new InvalidArgumentException($"exec process spec is not valid JSON: {ex.Message}", ex);
        }

        // runhcs reads the process from a file; the exec id is validated, so it names a file safely.
        string processFile = Path.Combine(_bundle, $"runhcs-exec-{request.ExecId}.json");
        File.WriteAllText(processFile, request.ProcessSpecJson);
        var exec = new RunhcsProcess(this, request.ExecId, processFile, _logger);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _execs.Add(exec);
        }

        return Task.FromResult<IRuntimeProcess>(exec);
    }

    public ValueTask ReleaseExecAsync(IRuntimeProcess exec, CancellationToken cancellationToken = default)
    {
        var process = (RunhcsProcess)exec;
        lock (_gate)
        {
            _execs.Remove(process);
        }

        // The process JSON and pid file were for runhcs exec; the exec is gone.
        if (process.ProcessFile is { } file)
        {
            File.Delete(file);
            File.Delete(Path.ChangeExtension(file, ".pid"));
        }

        return ValueTask.CompletedTask;
    }

    /// <summary><c>runhcs exec --detach</c>: returns the runhcs process (whose stdio is the exec's) and the shim pid.</summary>
    public async Task<(Process Runhcs, int Pid)> StartExecAsync(string execId, string processFile, CancellationToken cancellationToken)
    {
        string pidFile = Path.Combine(_bundle, $"runhcs-exec-{execId}.pid");
        File.Delete(pidFile);
        List<string> arguments = [Id, "--process", processFile, "--detach", "--pid-file", pidFile];
        if (_shimLog is not null)
        {
            arguments.AddRange(["--shim-log", _shimLog.Address]);
        }

        Process runhcs = await Cli.RunWithStdioAsync("exec", arguments, Cli.Settings.CommandTimeout, cancellationToken)
            .ConfigureAwait(false);
        try
        {
            return (runhcs, ReadPidFile(pidFile, "exec"));
        }
        catch
        {
            runhcs.Dispose();
            throw;
        }
    }

    public Task PauseAsync(CancellationToken cancellationToken = default) => Cli.RunAsync("pause", [Id], cancellationToken);

    public Task ResumeAsync(CancellationToken cancellationToken = default) => Cli.RunAsync("resume", [Id], cancellationToken);

    public async Task<IReadOnlyList<int>> ListPidsAsync(CancellationToken cancellationToken = default)
    {
        string json = await Cli.RunAsync("ps", [Id, "--format", "json"], cancellationToken).ConfigureAwait(false);
        try
        {
            // Go encodes an empty list as null.
            return JsonSerializer.Deserialize(json.Trim() is { Length: > 0 } text ? text : "null", PidsJson.Default.Int32Array) ?? [];
        }
        catch (JsonException ex)
        {
            throw new RunhcsException("ps", 0, $"runhcs ps: not a JSON array of pids ({ex.Message}): {Clip(json)}");
        }
    }

    /// <summary>
    /// Kill with all: runhcs reaches only the init process, so every exec this plugin started is
    /// signalled first (their exits come before the init's), then the init through runhcs.
    /// </summary>
    public async Task SignalAllAsync(int signal, CancellationToken cancellationToken)
    {
        foreach (RunhcsProcess exec in Execs().Where(e => !e.HasEnded))
        {
            try
            {
                await exec.SignalOneAsync(signal, cancellationToken).ConfigureAwait(false);
            }
            catch (NotFoundException)
            {
                // Ended meanwhile.
            }
        }

        await _init.SignalOneAsync(signal, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        RunhcsProcess[] execs;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            execs = [.. _execs];
        }

        foreach (RunhcsProcess exec in execs)
        {
            exec.Terminate();
        }

        // delete --force ends whatever still runs (container, shims, utility VM) and forgets the state.
        using (var deadline = new CancellationTokenSource(DeleteTimeout))
        {
            try
            {
                await Cli.RunAsync("delete", [Id, "--force"], deadline.Token).ConfigureAwait(false);
            }
            catch (NotFoundException)
            {
                // Already gone: runhcs cleaned up after a failed create, or someone deleted it.
            }
            catch (Exception ex) when (ex is ShimException or RunhcsException or TimeoutException
                                           or OperationCanceledException or IOException)
            {
                RunhcsLog.CleanupFailed(_logger, Id, "runhcs delete --force", ex);
            }
        }

        foreach (RunhcsProcess process in execs.Prepend(_init))
        {
            process.Release();
            Remove(process.ProcessFile);
        }

        Remove(InitPidFile);
        foreach (RunhcsProcess exec in execs)
        {
            Remove(exec.ProcessFile is { } file ? Path.ChangeExtension(file, ".pid") : null);
        }

        if (_shimLog is not null)
        {
            await _shimLog.DisposeAsync().ConfigureAwait(false);
        }

        if (_vmLog is not null)
        {
            await _vmLog.DisposeAsync().ConfigureAwait(false);
        }
    }

    private RunhcsProcess[] Execs()
    {
        lock (_gate)
        {
            return [.. _execs];
        }
    }

    private static int ReadPidFile(string path, string command)
    {
        string text;
        try
        {
            text = File.ReadAllText(path).Trim();
        }
        catch (Exception ex) when (ex is FileNotFoundException or IOException)
        {
            throw new RunhcsException(command, 0, $"runhcs {command} succeeded but wrote no pid file {path}");
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && pid > 0
            ? pid
            : throw new RunhcsException(command, 0, $"runhcs {command} wrote \"{Clip(text)}\" to {path}, not a pid");
    }

    private void Remove(string? path)
    {
        if (path is null)
        {
            return;
        }

        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            RunhcsLog.CleanupFailed(_logger, Id, $"delete {path}", ex);
        }
    }

    private static string Clip(string text) => text.Length <= 200 ? text : text[..200] + "…";
}

[System.Text.Json.Serialization.JsonSerializable(typeof(int[]))]
internal sealed partial class PidsJson : System.Text.Json.Serialization.JsonSerializerContext;
