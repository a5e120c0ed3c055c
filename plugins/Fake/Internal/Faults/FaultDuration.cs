using System.Globalization;

namespace PluggableShim.Plugins.Fake.Internal.Faults;

/// <summary>
/// Durations in annotations, written as Go and containerd users write them: one or more
/// <c>NUMBER UNIT</c> pairs with unit <c>ms</c>, <c>s</c>, <c>m</c> or <c>h</c> (<c>250ms</c>,
/// <c>1.5s</c>, <c>1m30s</c>). A bare number is refused: its unit would be a guess.
/// </summary>
internal static class FaultDuration
{
    /// <summary>The longest delay accepted, so that a typo cannot park a call for days.</summary>
    public static readonly TimeSpan Max = TimeSpan.FromHours(1);

    public static bool TryParse(string text, out TimeSpan duration, out string? error)
    {
        duration = TimeSpan.Zero;
        error = null;
        ReadOnlySpan<char> rest = text.AsSpan().Trim();
        if (rest.IsEmpty)
        {
            error = "is empty";
            return false;
        }

        double totalMs = 0;
        while (!rest.IsEmpty)
        {
            int digits = 0;
            while (digits < rest.Length && (char.IsAsciiDigit(rest[digits]) || rest[digits] == '.'))
            {
                digits++;
            }

            int letters = digits;
            while (letters < rest.Length && char.IsAsciiLetterLower(rest[letters]))
            {
                letters++;
            }

            if (digits == 0 || !double.TryParse(rest[..digits], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double number))
            {
                error = "must be a number followed by a unit, such as 500ms, 2s, 1m30s";
                return false;
            }

            double unitMs = rest[digits..letters] switch
            {
                "ms" => 1,
                "s" => 1000,
                "m" => 60_000,
                "h" => 3_600_000,
                "" => double.NaN,
                _ => -1,
            };
            if (double.IsNaN(unitMs) && letters < rest.Length)
            {
                error = "must be a number followed by a unit, such as 500ms, 2s, 1m30s";
                return false;
            }

            if (double.IsNaN(unitMs))
            {
                error = "needs a unit (ms, s, m or h), such as 500ms or 2s";
                return false;
            }

            if (unitMs < 0)
            {
                error = $"has an unknown unit \"{rest[digits..letters]}\" (use ms, s, m or h)";
                return false;
            }

            totalMs += number * unitMs;
            rest = rest[letters..];
        }

        if (totalMs > Max.TotalMilliseconds)
        {
            error = $"is longer than the {Max.TotalMinutes:0} minutes allowed";
            return false;
        }

        duration = TimeSpan.FromMilliseconds(totalMs);
        return true;
    }
}
