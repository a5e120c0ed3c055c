namespace PluggableShim.Plugins.Fake.Internal.Faults;

/// <summary>
/// What the annotations ask of one process: how the call that creates it (Create for the init
/// process, Exec for an exec) and its Start behave, and how it ends. Null means "as normal".
/// </summary>
internal sealed record ProcessFaults
{
    public static readonly ProcessFaults None = new();

    /// <summary>Create (init) or Exec (exec) fails with this, after <see cref="CreateDelay"/>.</summary>
    public InjectedError? CreateError { get; init; }

    public TimeSpan? CreateDelay { get; init; }

    /// <summary>Start fails with this, after <see cref="StartDelay"/>; the process is not spawned.</summary>
    public InjectedError? StartError { get; init; }

    public TimeSpan? StartDelay { get; init; }

    /// <summary>The exit status reported however the process ends, except an OOM kill (137).</summary>
    public int? ExitCode { get; init; }

    /// <summary>The process (and its descendants) ends this long after it started.</summary>
    public TimeSpan? ExitAfter { get; init; }

    /// <summary>This long after start: an OOM is reported, then the process tree is SIGKILLed (137).</summary>
    public TimeSpan? OomAfter { get; init; }

    public bool EndsByItself => ExitAfter is not null || OomAfter is not null;

    /// <summary>These faults, with any that are unset taken from <paramref name="fallback"/>.</summary>
    public ProcessFaults Over(ProcessFaults fallback) => new()
    {
        CreateError = CreateError ?? fallback.CreateError,
        CreateDelay = CreateDelay ?? fallback.CreateDelay,
        StartError = StartError ?? fallback.StartError,
        StartDelay = StartDelay ?? fallback.StartDelay,
        ExitCode = ExitCode ?? fallback.ExitCode,
        ExitAfter = ExitAfter ?? fallback.ExitAfter,
        OomAfter = OomAfter ?? fallback.OomAfter,
    };
}
