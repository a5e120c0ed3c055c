using System.Text.RegularExpressions;
using PluggableShim.Abstractions;

namespace PluggableShim.Host.Cli;

/// <summary>
/// containerd's identifier rule: letters and digits separated by single '.', '_' or '-',
/// at most 76 characters. Ids end up in paths and socket names, so nothing else is let through.
/// </summary>
internal static partial class Identifiers
{
    public const int MaxLength = 76;

    [GeneratedRegex("^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();

    public static void Validate(string value, string what)
    {
        if (string.IsNullOrEmpty(value))
        {
            throw new InvalidArgumentException($"{what} must not be empty");
        }

        if (value.Length > MaxLength)
        {
            throw new InvalidArgumentException($"{what} \"{Truncate(value)}\" is longer than {MaxLength} characters");
        }

        if (!Pattern().IsMatch(value))
        {
            throw new InvalidArgumentException(
                $"{what} \"{Truncate(value)}\" must be letters and digits separated by single '.', '_' or '-'");
        }
    }

    public static void ValidateNamespace(string value) => Validate(value, "namespace");

    private static string Truncate(string value) => value.Length > 80 ? value[..80] + "…" : value;
}
