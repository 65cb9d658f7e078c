using System.Text;
using System.Text.Json;

namespace Tabula.Provisioning.Core;

/// <summary>
/// Machine labels and group selection, after matchbox (<c>storagepb/group.go ByReqs</c>): the groups whose every
/// selector entry equals the machine's label match; among them the one with most selector entries wins, ties
/// broken by the sorted selector string, so selection is deterministic. A group with an empty selector is the
/// explicit default; without one, an unmatched machine gets <see cref="ProvisioningError.NoMatchingGroup"/>.
/// Labels are identifiers, not credentials: nothing secret may be selected by them (threat checklist #20).
/// </summary>
public static class MachineGroups
{
    /// <summary>Label keys a selector may use.</summary>
    public static readonly IReadOnlySet<string> LabelKeys = new HashSet<string>(StringComparer.Ordinal)
        { "mac", "hostname", "serial" };

    /// <summary>Normalises a label value: MACs to lowercase colon form, hostnames to lowercase; rejects values
    /// that are too long or hold control characters.</summary>
    public static bool TryNormalize(string key, string? value, out string normalized)
    {
        normalized = "";
        if (string.IsNullOrEmpty(value) || value.Length > ProvisioningLimits.MaxLabelValueLength
                                        || value.Any(char.IsControl))
            return false;
        switch (key)
        {
            case "mac":
                string hex = value.Replace(":", "").Replace("-", "").ToLowerInvariant();
                if (hex.Length != 12 || !hex.All(char.IsAsciiHexDigit))
                    return false;
                normalized = string.Join(':', Enumerable.Range(0, 6).Select(i => hex.Substring(i * 2, 2)));
                return true;
            case "hostname":
                normalized = value.ToLowerInvariant();
                return normalized.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.');
            case "serial":
                normalized = value;
                return value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':');
            default:
                return false;
        }
    }

    /// <summary>Parses a group file. <paramref name="id"/> is its file name and must equal the <c>id</c> field.</summary>
    public static MachineGroup Parse(ReadOnlySpan<byte> json, string id)
    {
        GroupFile? file;
        try
        {
            file = JsonSerializer.Deserialize(json, ProvisioningJsonContext.Default.GroupFile);
        }
        catch (JsonException e)
        {
            throw Invalid(id, $"not valid JSON: {e.Message}", e);
        }
        if (file is null)
            throw Invalid(id, "is JSON null", null);
        if (!Names.IsValid(id) || file.Id != id)
            throw Invalid(id, $"id must equal the file name and follow the rule: {Names.Rule}", null);
        if (!Names.IsValid(file.Channel))
            throw Invalid(id, "channel " + Names.Rule, null);
        var selector = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in file.Selector ?? [])
        {
            if (!LabelKeys.Contains(key))
                throw Invalid(id, $"selector key '{key}' is not one of: {string.Join(", ", LabelKeys)}", null);
            if (!TryNormalize(key, value, out string normalized))
                throw Invalid(id, $"selector {key} has an invalid value", null);
            selector[key] = normalized;
        }
        if (file.HostConfig is { } hc)
        {
            if (hc.ValueKind != JsonValueKind.Object)
                throw Invalid(id, "host_config must be a JSON object", null);
            // Served to stboot as is: it must be a host configuration stboot accepts (current or legacy fields).
            Tabula.Packaging.HostConfig parsed;
            try
            {
                parsed = Tabula.Packaging.HostConfig.Parse(Encoding.UTF8.GetBytes(hc.GetRawText()));
            }
            catch (Tabula.Packaging.PackageFormatException e)
            {
                throw Invalid(id, $"host_config is not a valid host configuration: {e.Message}", e);
            }
            if (SecretIn(hc, parsed) is { } secret)
                throw Invalid(id, $"host_config holds a secret ({secret}); a group's host configuration is served without " +
                    "authentication and copied to static mirrors, so a machine's secrets live in its stboot image or its " +
                    "STHostConfig EFI variable instead (docs/provisioning.md)", null);
        }
        return new MachineGroup(id, selector, file.Channel, file.HostConfig);
    }

    /// <summary>
    /// The first secret a served host configuration must not hold, or null: a relay's identity key or enrollment
    /// token (tabula_relay), the legacy identity and authentication fields, or credentials inside a package URL.
    /// </summary>
    static string? SecretIn(JsonElement raw, Tabula.Packaging.HostConfig config)
    {
        if (raw.TryGetProperty("tabula_relay", out _))
            return "tabula_relay: an identity key or enrollment token";
        if (config.Identity is not null)
            return "identity";
        if (config.Authentication is not null)
            return "authentication";
        foreach (string pointer in config.OsPackagePointers)
            if (Uri.TryCreate(pointer, UriKind.Absolute, out var uri) && uri.UserInfo.Length > 0)
                return "credentials in a package URL";
        return null;
    }

    /// <summary>Picks the most specific group matching <paramref name="labels"/> (already normalised).</summary>
    public static MachineGroup Select(IEnumerable<MachineGroup> groups, IReadOnlyDictionary<string, string> labels) =>
        groups
            .Where(g => g.Selector.All(s => labels.TryGetValue(s.Key, out string? v) && v == s.Value))
            .OrderByDescending(g => g.Selector.Count)
            .ThenBy(g => string.Join(',', g.Selector.Select(s => s.Key + "=" + s.Value)), StringComparer.Ordinal)
            .ThenBy(g => g.Id, StringComparer.Ordinal)
            .FirstOrDefault()
        ?? throw new ProvisioningException(ProvisioningError.NoMatchingGroup,
            "no group matches this machine's labels and no default group (empty selector) exists");

    static ProvisioningException Invalid(string id, string why, Exception? inner) =>
        new(ProvisioningError.StoreFailed, $"group file {id}.json {why}", inner);
}

/// <summary>The on-disk shape of a group file.</summary>
public sealed record GroupFile(string Id, Dictionary<string, string>? Selector, string Channel, JsonElement? HostConfig);
