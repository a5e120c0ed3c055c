namespace PluggableShim.Host.IO;

/// <summary>The stdio a client asked for: FIFO or file paths (empty for none), and terminal mode.</summary>
internal sealed record StdioPaths(string Stdin, string Stdout, string Stderr, bool Terminal);
