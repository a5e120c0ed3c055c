namespace PluggableShim.Conformance;

/// <summary>
/// For the kit's own tests of its clean-up: while a scope is open (in its async flow only, so
/// tests running in parallel are not touched), <see cref="LaunchedShim.StartAsync"/> replaces what
/// <c>start</c> printed with what the rewrite returns (given the bundle and the printed text)
/// before parsing and dialling it.
/// </summary>
internal sealed class RewriteStartOutputScope : IDisposable
{
    private static readonly AsyncLocal<Func<string, string, string>?> Rewrite = new();

    private readonly Func<string, string, string>? _previous;

    public RewriteStartOutputScope(Func<string, string, string> rewrite)
    {
        ArgumentNullException.ThrowIfNull(rewrite);
        _previous = Rewrite.Value;
        Rewrite.Value = rewrite;
    }

    /// <summary>The rewrite in force in this async flow, or null.</summary>
    public static Func<string, string, string>? Current => Rewrite.Value;

    public void Dispose() => Rewrite.Value = _previous;
}
