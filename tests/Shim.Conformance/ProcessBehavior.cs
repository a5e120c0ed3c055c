namespace PluggableShim.Conformance;

/// <summary>
/// What a container's process (or an exec) must do for a test, in this order: print
/// <see cref="Stdout"/> and <see cref="Stderr"/>; if <see cref="EchoStdin"/>, answer each line L of
/// standard input with <c>got-L</c> on standard output until end of input, then print
/// <c>stdin-eof</c>; then sleep <see cref="Sleep"/> (<see cref="Forever"/>: until killed); then exit
/// with <see cref="ExitCode"/>. A target turns this into its own process spec
/// (<see cref="ConformanceTarget.ProcessSpec"/>).
/// </summary>
public sealed record ProcessBehavior
{
    /// <summary>Sleeping this long means "until killed".</summary>
    public static readonly TimeSpan Forever = Timeout.InfiniteTimeSpan;

    /// <summary>Lines written to standard output first.</summary>
    public IReadOnlyList<string> Stdout { get; init; } = [];

    /// <summary>Lines written to standard error next.</summary>
    public IReadOnlyList<string> Stderr { get; init; } = [];

    /// <summary>Whether standard input is read to its end, each line echoed as <c>got-LINE</c>.</summary>
    public bool EchoStdin { get; init; }

    /// <summary>How long to sleep before exiting; <see cref="Forever"/> to run until a signal ends it.</summary>
    public TimeSpan Sleep { get; init; }

    /// <summary>The exit code (0–255).</summary>
    public int ExitCode { get; init; }

    /// <summary>Runs until killed.</summary>
    public static ProcessBehavior RunUntilKilled(params string[] stdout) => new() { Stdout = stdout, Sleep = Forever };

    /// <summary>Prints, then exits at once with <paramref name="exitCode"/>.</summary>
    public static ProcessBehavior ExitWith(int exitCode, params string[] stdout) => new() { Stdout = stdout, ExitCode = exitCode };
}
