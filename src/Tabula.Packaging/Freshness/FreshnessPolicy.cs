namespace Tabula.Packaging;

/// <summary>What stboot does when it gets no valid boot ticket.</summary>
public enum FreshnessMode
{
    /// <summary>No ticket, no boot: stboot waits and asks again.</summary>
    Required,
    /// <summary>Boot anyway when the controller cannot be reached, say so on the console and in the hand-over. Every
    /// other refusal (a bad ticket, a floor) still refuses.</summary>
    Optional,
}

/// <summary>
/// trust_policy.json's optional <c>tabula_freshness</c> object (upstream stboot ignores it):
/// <code>{"mode": "required"|"optional", "min_release": N, "machine_class": "relay", "ticket_url": "https://…/boot/v1/ticket"}</code>
/// mode and ticket_url are required; min_release (default 0: no floor) and machine_class (default none) are optional.
/// The ticket key itself is the folder's <see cref="TrustPolicyFolder.TicketRootFile"/>.
/// </summary>
/// <param name="Mode">required or optional.</param>
/// <param name="MinRelease">The floor baked into the image: no package below it boots (0: none).</param>
/// <param name="MachineClass">The class every package must carry, or null for any class.</param>
/// <param name="TicketUrl">Where stboot POSTs its ticket request (https, checked against tls_roots.pem).</param>
public sealed record FreshnessPolicy(FreshnessMode Mode, long MinRelease, string? MachineClass, Uri TicketUrl)
{
    /// <summary>Longest ticket_url, in characters.</summary>
    public const int MaxTicketUrlLength = 2048;

    /// <summary>The spelling in JSON and on the command line.</summary>
    public static string Spell(FreshnessMode mode) => mode switch
    {
        FreshnessMode.Required => "required",
        FreshnessMode.Optional => "optional",
        _ => throw new ArgumentOutOfRangeException(nameof(mode)),
    };

    /// <summary>Parses "required" or "optional".</summary>
    public static bool TryParseMode(string? text, out FreshnessMode mode)
    {
        (bool ok, mode) = text switch
        {
            "required" => (true, FreshnessMode.Required),
            "optional" => (true, FreshnessMode.Optional),
            _ => (false, default),
        };
        return ok;
    }

    /// <summary>True for an absolute https URL without userinfo, fragment or query, at most 2048 characters.</summary>
    public static bool IsValidTicketUrl(Uri? url) =>
        url is { IsAbsoluteUri: true } && url.Scheme == Uri.UriSchemeHttps && url.UserInfo.Length == 0
        && url.Fragment.Length == 0 && url.Query.Length == 0 && url.OriginalString.Length <= MaxTicketUrlLength
        && url.Host.Length > 0;

    /// <summary>Throws <see cref="ArgumentException"/> for a policy <see cref="Read"/> would refuse.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Mode)) throw new ArgumentOutOfRangeException(nameof(Mode));
        if (!Releases.IsValidFloor(MinRelease))
            throw new ArgumentOutOfRangeException(nameof(MinRelease), MinRelease, $"min_release is 0-{Releases.MaxRelease}");
        Releases.CheckClassOrNone(MachineClass, nameof(MachineClass));
        if (!IsValidTicketUrl(TicketUrl))
            throw new ArgumentException("ticket_url must be an absolute https URL without userinfo, query or fragment, at most 2048 characters", nameof(TicketUrl));
    }

    internal static FreshnessPolicy Read(JsonFields parent, string key, string what)
    {
        if (parent.Get(key) is not { } value) throw new InvalidOperationException("caller checks presence");
        if (value.ValueKind != System.Text.Json.JsonValueKind.Object)
            return parent.Wrong<FreshnessPolicy>(key, "an object", value);
        var fields = new JsonFields(value, $"{what}: {key}");
        string modeText = fields.RequiredString("mode");
        if (!TryParseMode(modeText, out var mode))
            fields.Invalid("mode", "must be \"required\" or \"optional\"");
        long floor = fields.OptionalInteger("min_release") ?? 0;
        if (!Releases.IsValidFloor(floor))
            fields.Invalid("min_release", $"must be 0-{Releases.MaxRelease}");
        string? machineClass = fields.OptionalString("machine_class");
        if (machineClass is not null && !Releases.IsValidMachineClass(machineClass))
            fields.Invalid("machine_class", $"must be 1-{Releases.MaxMachineClassLength} characters of [a-z0-9-]");
        string urlText = fields.RequiredString("ticket_url");
        Uri? url = null;
        if (urlText.Length > MaxTicketUrlLength || !Uri.TryCreate(urlText, UriKind.Absolute, out url) || !IsValidTicketUrl(url))
            fields.Invalid("ticket_url", "must be an absolute https URL without userinfo, query or fragment, at most 2048 characters");
        return new FreshnessPolicy(mode, floor, machineClass, url!);
    }

    internal void Write(System.Text.Json.Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteString("mode", Spell(Mode));
        writer.WriteNumber("min_release", MinRelease);
        if (MachineClass is not null)
            writer.WriteString("machine_class", MachineClass);
        writer.WriteString("ticket_url", TicketUrl.OriginalString);
        writer.WriteEndObject();
    }
}
