using System.Diagnostics.CodeAnalysis;

namespace Tabula.Provisioning.Core;

/// <summary>Channel and group names: 1-64 characters of [a-z0-9-], not starting with '-'. Validated once at the
/// edge so that a name is always a safe file name (no '/', '..', NUL) and URL segment.</summary>
public static class Names
{
    public const string Rule = "names are 1-64 characters of [a-z0-9-] and start with a letter or digit";

    public static bool IsValid([NotNullWhen(true)] string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > ProvisioningLimits.MaxNameLength || name[0] == '-')
            return false;
        foreach (char c in name)
            if (!char.IsAsciiLetterLower(c) && !char.IsAsciiDigit(c) && c != '-')
                return false;
        return true;
    }
}
