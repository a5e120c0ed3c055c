using System.Globalization;
using System.Text.RegularExpressions;
using PluggableShim.Abstractions;

namespace PluggableShim.Plugins.Fake.Internal.Faults;

/// <summary>
/// The faults a container's annotations inject, read once at Create. Every annotation under
/// <see cref="Prefix"/> must be one this class knows, with a valid value: a typo fails Create with
/// InvalidArgument naming the annotation rather than silently testing nothing.
/// </summary>
/// <remarks>
/// Names are <c>PREFIX[exec.[EXEC-ID.]]FAULT</c>: without <c>exec.</c> the fault is the container's
/// (its Create, its init process); <c>exec.FAULT</c> applies to every exec and
/// <c>exec.EXEC-ID.FAULT</c> to the exec with that id, winning over the former fault by fault.
/// FAULT never holds a dot, so an exec id with dots in it is still read correctly.
/// </remarks>
internal sealed partial class FaultPlan
{
    public const string Prefix = "io.pluggableshim.fake.";
    private const string ExecScope = "exec.";

    public static readonly FaultPlan None = new(ProcessFaults.None, ProcessFaults.None, new Dictionary<string, ProcessFaults>());

    /// <summary>The fault names, in the order the README lists them.</summary>
    public static readonly IReadOnlyList<string> FaultNames =
        ["create-error", "create-delay", "start-error", "start-delay", "exit-code", "exit-after", "oom-after"];

    private readonly ProcessFaults _everyExec;
    private readonly IReadOnlyDictionary<string, ProcessFaults> _execs;

    private FaultPlan(ProcessFaults init, ProcessFaults everyExec, IReadOnlyDictionary<string, ProcessFaults> execs)
    {
        Init = init;
        _everyExec = everyExec;
        _execs = execs;
    }

    /// <summary>The faults of the container's Create and of its init process.</summary>
    public ProcessFaults Init { get; }

    public bool IsEmpty => ReferenceEquals(this, None);

    /// <summary>The faults of the exec <paramref name="execId"/>: its own over the every-exec ones.</summary>
    public ProcessFaults ForExec(string execId) =>
        _execs.TryGetValue(execId, out ProcessFaults? own) ? own.Over(_everyExec) : _everyExec;

    /// <summary>Reads the fault annotations; anything else in <paramref name="annotations"/> is ignored.</summary>
    /// <exception cref="InvalidArgumentException">An annotation under the prefix is unknown or has a bad value.</exception>
    public static FaultPlan Parse(IReadOnlyDictionary<string, string> annotations)
    {
        ArgumentNullException.ThrowIfNull(annotations);
        ProcessFaults init = ProcessFaults.None;
        ProcessFaults everyExec = ProcessFaults.None;
        var execs = new Dictionary<string, ProcessFaults>(StringComparer.Ordinal);
        bool any = false;

        // Ordinal order: the first bad annotation reported is the same on every run.
        foreach ((string name, string value) in annotations.OrderBy(a => a.Key, StringComparer.Ordinal))
        {
            if (!name.StartsWith(Prefix, StringComparison.Ordinal))
            {
                continue;
            }

            any = true;
            string rest = name[Prefix.Length..];
            if (!rest.StartsWith(ExecScope, StringComparison.Ordinal))
            {
                init = With(init, name, rest, value);
                continue;
            }

            rest = rest[ExecScope.Length..];
            int dot = rest.LastIndexOf('.');
            if (dot < 0)
            {
                everyExec = With(everyExec, name, rest, value);
                continue;
            }

            string execId = rest[..dot];
            if (!ExecIdPattern().IsMatch(execId) || execId.Length > 76)
            {
                throw new InvalidArgumentException(
                    $"annotation {name}: \"{execId}\" is not a valid exec id (letters and digits separated by single '.', '_' or '-')");
            }

            execs[execId] = With(execs.GetValueOrDefault(execId, ProcessFaults.None), name, rest[(dot + 1)..], value);
        }

        return any ? new FaultPlan(init, everyExec, execs) : None;
    }

    private static ProcessFaults With(ProcessFaults faults, string annotation, string fault, string value) => fault switch
    {
        "create-error" => faults with { CreateError = Error(annotation, value) },
        "create-delay" => faults with { CreateDelay = Duration(annotation, value) },
        "start-error" => faults with { StartError = Error(annotation, value) },
        "start-delay" => faults with { StartDelay = Duration(annotation, value) },
        "exit-code" => faults with { ExitCode = ExitCode(annotation, value) },
        "exit-after" => faults with { ExitAfter = Duration(annotation, value) },
        "oom-after" => faults with { OomAfter = Duration(annotation, value) },
        _ => throw new InvalidArgumentException(
            $"annotation {annotation} is not a Fake plugin fault; the faults are {string.Join(", ", FaultNames)}, " +
            $"as {Prefix}FAULT, {Prefix}{ExecScope}FAULT or {Prefix}{ExecScope}EXEC-ID.FAULT"),
    };

    /// <summary><c>CODE[:MESSAGE]</c>; CODE is a name (any case, <c>_</c> ignored) or its gRPC number.</summary>
    private static InjectedError Error(string annotation, string value)
    {
        int colon = value.IndexOf(':', StringComparison.Ordinal);
        string code = (colon < 0 ? value : value[..colon]).Trim();
        string? message = colon < 0 || colon == value.Length - 1 ? null : value[(colon + 1)..];
        string normalized = code.Replace("_", "", StringComparison.Ordinal);
        FaultCode? parsed = int.TryParse(code, NumberStyles.None, CultureInfo.InvariantCulture, out int number)
            ? (Enum.IsDefined((FaultCode)number) ? (FaultCode)number : null)
            : Enum.GetValues<FaultCode>().Cast<FaultCode?>()
                .FirstOrDefault(c => string.Equals(c.ToString(), normalized, StringComparison.OrdinalIgnoreCase));
        return parsed is { } known
            ? new InjectedError(known, message, annotation)
            : throw new InvalidArgumentException(
                $"annotation {annotation}: \"{code}\" is not a status code a fault can answer with; " +
                $"use CODE[:MESSAGE] with CODE one of {string.Join(", ", Enum.GetNames<FaultCode>())}");
    }

    private static TimeSpan Duration(string annotation, string value) =>
        FaultDuration.TryParse(value, out TimeSpan duration, out string? error)
            ? duration
            : throw new InvalidArgumentException($"annotation {annotation}: \"{value}\" {error}");

    private static int ExitCode(string annotation, string value) =>
        int.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int code) && code <= 255
            ? code
            : throw new InvalidArgumentException($"annotation {annotation}: \"{value}\" is not an exit code (0 to 255)");

    // The host's identifier rule (containerd's), which every exec id passes.
    [GeneratedRegex("^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$", RegexOptions.CultureInvariant)]
    private static partial Regex ExecIdPattern();
}
