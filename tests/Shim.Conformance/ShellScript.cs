using System.Globalization;
using System.Text;

namespace PluggableShim.Conformance;

/// <summary>A <see cref="ProcessBehavior"/> as a POSIX shell script.</summary>
public static class ShellScript
{
    /// <summary>The script.</summary>
    public static string For(ProcessBehavior behavior)
    {
        ArgumentNullException.ThrowIfNull(behavior);
        var script = new StringBuilder();
        foreach (string line in behavior.Stdout)
        {
            script.Append("echo ").Append(Quote(line)).Append("; ");
        }

        foreach (string line in behavior.Stderr)
        {
            script.Append("echo ").Append(Quote(line)).Append(" >&2; ");
        }

        if (behavior.EchoStdin)
        {
            script.Append("while IFS= read -r l; do echo \"got-$l\"; done; echo stdin-eof; ");
        }

        if (behavior.Sleep == ProcessBehavior.Forever)
        {
            // exec: the signal reaches the sleeper itself, and the status is 128 + signal. An odd
            // duration, so that it is never mistaken for another test's sleeper.
            script.Append("exec sleep 86399");
            return script.ToString();
        }

        if (behavior.Sleep > TimeSpan.Zero)
        {
            script.Append("sleep ").Append(behavior.Sleep.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)).Append("; ");
        }

        script.Append("exit ").Append(behavior.ExitCode.ToString(CultureInfo.InvariantCulture));
        return script.ToString();
    }

    private static string Quote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
