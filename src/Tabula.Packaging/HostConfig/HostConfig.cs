using System.Net;
using System.Text;
using System.Text.Json;

namespace Tabula.Packaging;

/// <summary>How the machine gets its address.</summary>
public enum NetworkMode
{
    /// <summary>host_ip, gateway (and dns) from the host configuration.</summary>
    Static,
    /// <summary>DHCP on the chosen interface.</summary>
    Dhcp,
}

/// <summary>A NIC to use: matched by MAC; the name is used for bonding.</summary>
public sealed record NetworkInterface(string? Name, string? MacAddress);

/// <summary>
/// The host configuration (host_configuration.json or the STHostConfig EFI variable), in the st-1.x
/// schema, with the legacy fields of older provisioning (formats reference §3.1) mapped onto it:
/// a single-string <c>dns</c>, <c>network_interface</c> (one MAC), <c>provisioning_urls</c> (when there
/// is no <c>ospkg_pointer</c>), <c>network_interfaces</c> as interface names, and <c>bonding</c>.
/// An omitted key and an explicit null are the same. Only valid configurations can be constructed.
/// </summary>
public sealed record HostConfig
{
    /// <summary>static or dhcp.</summary>
    public required NetworkMode NetworkMode { get; init; }
    /// <summary>The host address (static mode).</summary>
    public IPAddress? HostAddress { get; init; }
    /// <summary>The prefix length of <see cref="HostAddress"/>'s network.</summary>
    public int? PrefixLength { get; init; }
    /// <summary>The exact address with prefix as written, e.g. 192.0.2.10/24 (static mode).</summary>
    public string? HostIpText { get; init; }
    /// <summary>Default gateway (static mode).</summary>
    public IPAddress? Gateway { get; init; }
    /// <summary>Resolver addresses.</summary>
    public IReadOnlyList<IPAddress> Dns { get; init; } = [];
    /// <summary>NICs to use; empty means any NIC with a MAC.</summary>
    public IReadOnlyList<NetworkInterface> NetworkInterfaces { get; init; } = [];
    /// <summary>Descriptor URLs (network fetch) in order, or the package file name (initramfs fetch).</summary>
    public required IReadOnlyList<string> OsPackagePointers { get; init; }
    /// <summary>Bonding mode, null when not bonding.</summary>
    public string? BondingMode { get; init; }
    /// <summary>Bond interface name when bonding.</summary>
    public string? BondName { get; init; }
    /// <summary>Free text (st-1.2.0+).</summary>
    public string? Description { get; init; }
    /// <summary>Legacy identity (v0.2 $ID).</summary>
    public string? Identity { get; init; }
    /// <summary>Legacy authentication (v0.2 $AUTH).</summary>
    public string? Authentication { get; init; }
    /// <summary>Legacy keys that were present and mapped or ignored, for `hostconfig check` to report.</summary>
    public IReadOnlyList<string> LegacyFields { get; init; } = [];

    /// <summary>Bonding modes the kernel bonding driver knows.</summary>
    public static readonly IReadOnlyList<string> BondingModes =
        ["balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"];

    /// <summary>
    /// Parses host configuration JSON. Text before a line "---" is skipped, so the upstream stmgr
    /// sample files (a description, then JSON) parse as they are.
    /// </summary>
    public static HostConfig Parse(ReadOnlySpan<byte> json)
    {
        PackageFormatException.ThrowIfTooLarge(json.Length, Limits.MaxConfigJsonBytes, "host configuration");
        using var document = JsonFields.ParseObject(SkipDescription(json), Limits.MaxConfigJsonBytes, "host configuration");
        var f = new JsonFields(document.RootElement, "host configuration");
        var legacy = new List<string>();

        // The steps read the fields in this order, so the first bad field is the one an error names.
        ReadVersion(f, legacy);
        var networkMode = ReadNetworkMode(f);
        var (hostIp, prefixLength, hostIpText, gateway) = ReadAddressing(f, networkMode);
        var dns = ReadDns(f, legacy);
        var interfaces = ReadInterfaces(f, legacy);
        var pointers = ReadPointers(f, legacy);
        var (bondingMode, bondName) = ReadBonding(f, legacy);

        foreach (var ignored in (ReadOnlySpan<string>)["timestamp"])
            if (f.IsPresent(ignored)) legacy.Add(ignored);
        f.OptionalInteger("timestamp");
        string? identity = f.OptionalString("identity");
        string? authentication = f.OptionalString("authentication");

        return new HostConfig
        {
            NetworkMode = networkMode,
            HostAddress = hostIp,
            PrefixLength = prefixLength,
            HostIpText = hostIp is null ? null : hostIpText,
            Gateway = gateway,
            Dns = dns,
            NetworkInterfaces = interfaces,
            OsPackagePointers = pointers,
            BondingMode = bondingMode,
            BondName = bondName,
            Description = f.OptionalString("description"),
            Identity = identity,
            Authentication = authentication,
            LegacyFields = legacy,
        };
    }

    /// <summary>
    /// The JSON part of a host configuration: text before a line "---" (stmgr's sample format: a description, then
    /// JSON) is skipped when the input does not start with the JSON object. Everything that reads or passes on host
    /// configuration bytes goes through this, so a sample-format file is accepted everywhere, not only by the checks.
    /// </summary>
    public static ReadOnlySpan<byte> JsonPart(ReadOnlySpan<byte> json) => SkipDescription(json);

    /// <summary>Text before a line "---" is skipped when the input does not start with the JSON object.</summary>
    private static ReadOnlySpan<byte> SkipDescription(ReadOnlySpan<byte> json)
    {
        int separator = json.IndexOf("\n---\n"u8);
        if (separator >= 0 && json.TrimStart(" \t\r\n"u8) is { Length: > 0 } t && t[0] != (byte)'{')
            return json[(separator + 5)..];
        return json;
    }

    private static void ReadVersion(JsonFields f, List<string> legacy)
    {
        if (f.OptionalInteger("version") is { } version)
        {
            legacy.Add("version");
            if (version != 1) PackageFormatException.Throw(FormatError.UnsupportedVersion, $"host configuration: field \"version\" is {version}, only 1 exists");
        }
    }

    private static NetworkMode ReadNetworkMode(JsonFields f)
    {
        string mode = f.RequiredString("network_mode");
        return mode switch
        {
            "static" => NetworkMode.Static,
            "dhcp" => NetworkMode.Dhcp,
            _ => f.Missing<NetworkMode>("network_mode", $"\"static\" or \"dhcp\", got \"{mode}\""),
        };
    }

    /// <summary>host_ip (CIDR) and gateway, both required for static addressing.</summary>
    private static (IPAddress? HostIp, int? PrefixLength, string? HostIpText, IPAddress? Gateway) ReadAddressing(
        JsonFields f, NetworkMode networkMode)
    {
        IPAddress? hostIp = null;
        int? prefixLength = null;
        string? hostIpText = f.OptionalString("host_ip");
        if (!string.IsNullOrEmpty(hostIpText))
        {
            if (!TryParseCidr(hostIpText, out var address, out int prefix))
                f.Invalid("host_ip", $"must be an address with a prefix length, like 192.0.2.10/24; got \"{hostIpText}\"");
            hostIp = address;
            prefixLength = prefix;
        }
        IPAddress? gateway = null;
        if (f.OptionalString("gateway") is { Length: > 0 } gatewayText && !IPAddress.TryParse(gatewayText, out gateway))
            f.Invalid("gateway", $"must be an IP address, got \"{gatewayText}\"");
        if (networkMode == NetworkMode.Static)
        {
            if (hostIp is null) f.Invalid("host_ip", "is required when network_mode is \"static\"");
            if (gateway is null) f.Invalid("gateway", "is required when network_mode is \"static\"");
        }
        return (hostIp, prefixLength, hostIpText, gateway);
    }

    /// <summary>dns: an array of addresses, or (legacy) one string.</summary>
    private static List<IPAddress> ReadDns(JsonFields f, List<string> legacy)
    {
        var dns = new List<IPAddress>();
        if (f.Get("dns") is { } dnsValue)
        {
            IEnumerable<string> servers;
            if (dnsValue.ValueKind == JsonValueKind.String) { legacy.Add("dns (single string)"); servers = [dnsValue.GetString()!]; }
            else servers = f.OptionalStringArray("dns", 16)!;
            foreach (var server in servers)
                dns.Add(IPAddress.TryParse(server, out var ip) ? ip : f.Missing<IPAddress>("dns", $"IP addresses, got \"{server}\""));
        }
        return dns;
    }

    /// <summary>network_interfaces (objects, or legacy names) and the legacy single network_interface MAC, which goes first.</summary>
    private static List<NetworkInterface> ReadInterfaces(JsonFields f, List<string> legacy)
    {
        var interfaces = new List<NetworkInterface>();
        if (f.Get("network_interfaces") is { } nics)
        {
            if (nics.ValueKind != JsonValueKind.Array) f.Wrong<int>("network_interfaces", "an array", nics);
            if (nics.GetArrayLength() > 64) f.Invalid("network_interfaces", "has more than 64 entries");
            int i = 0;
            foreach (var nic in nics.EnumerateArray())
            {
                if (nic.ValueKind == JsonValueKind.String)
                {
                    if (i == 0) legacy.Add("network_interfaces (names)");
                    interfaces.Add(new NetworkInterface(nic.GetString(), null));
                }
                else if (nic.ValueKind == JsonValueKind.Object)
                    interfaces.Add(ReadInterface(new JsonFields(nic, $"host configuration network_interfaces[{i}]")));
                else f.Invalid($"network_interfaces[{i}]", $"must be an object with interface_name and mac_address, not {JsonFields.Describe(nic.ValueKind)}");
                i++;
            }
        }
        if (f.OptionalString("network_interface") is { Length: > 0 } singleMac)
        {
            legacy.Add("network_interface");
            if (!IsMac(singleMac)) f.Invalid("network_interface", $"must be a MAC address, got \"{singleMac}\"");
            interfaces.Insert(0, new NetworkInterface(null, singleMac.ToLowerInvariant()));
        }
        return interfaces;
    }

    private static NetworkInterface ReadInterface(JsonFields nf)
    {
        string? name = nf.OptionalString("interface_name");
        string? mac = nf.OptionalString("mac_address");
        if (mac is not null && !IsMac(mac)) nf.Invalid("mac_address", $"must be a MAC address like aa:bb:cc:dd:ee:ff, got \"{mac}\"");
        if (name is null && mac is null) nf.Invalid("mac_address", "or interface_name is required");
        return new NetworkInterface(name, mac?.ToLowerInvariant());
    }

    /// <summary>ospkg_pointer (comma-separated), or the legacy provisioning_urls array.</summary>
    private static List<string> ReadPointers(JsonFields f, List<string> legacy)
    {
        List<string> pointers;
        string? pointer = f.OptionalString("ospkg_pointer");
        var provisioningUrls = f.OptionalStringArray("provisioning_urls", 16);
        if (provisioningUrls is not null) legacy.Add("provisioning_urls");
        if (!string.IsNullOrEmpty(pointer))
            pointers = [.. pointer.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)];
        else if (provisioningUrls is { Count: > 0 })
            pointers = [.. provisioningUrls.Select(u => u.Trim()).Where(u => u.Length > 0)];   // [""] is no pointer (found by afl)
        else
            return f.Missing<List<string>>("ospkg_pointer", "a non-empty string: descriptor URLs separated by commas, or a file name for initramfs fetch");
        if (pointers.Count == 0) f.Invalid("ospkg_pointer", "must not be empty");
        return pointers;
    }

    /// <summary>bonding_mode (one of <see cref="BondingModes"/>) with its bond_name; the legacy bonding flag can switch it off.</summary>
    private static (string? Mode, string? Name) ReadBonding(JsonFields f, List<string> legacy)
    {
        string? bondingMode = f.OptionalString("bonding_mode");
        if (bondingMode == "") bondingMode = null;
        if (f.OptionalBool("bonding") is { } bonding)
        {
            legacy.Add("bonding");
            if (!bonding) bondingMode = null;
        }
        if (bondingMode is not null && !BondingModes.Contains(bondingMode))
            f.Invalid("bonding_mode", $"must be one of {string.Join(", ", BondingModes)}; got \"{bondingMode}\"");
        string? bondName = f.OptionalString("bond_name");
        if (bondName == "") bondName = null;
        if (bondingMode is not null && bondName is null) f.Invalid("bond_name", "is required when bonding_mode is set");
        return (bondingMode, bondName);
    }

    private static bool TryParseCidr(string text, out IPAddress address, out int prefix)
    {
        address = IPAddress.None;
        prefix = 0;
        int slash = text.IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(text.AsSpan(0, slash), out var parsed) || !int.TryParse(text.AsSpan(slash + 1), out prefix))
            return false;
        address = parsed;
        return prefix >= 0 && prefix <= (parsed.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
    }

    private static bool IsMac(string text) =>
        text.Length == 17 && Enumerable.Range(0, 17).All(i => i % 3 == 2 ? text[i] is ':' or '-' : Uri.IsHexDigit(text[i]));

    /// <summary>One-line human summary.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(NetworkMode == NetworkMode.Static ? $"static {HostIpText} via {Gateway}" : "dhcp");
        if (Dns.Count > 0) sb.Append($", dns {string.Join(' ', Dns)}");
        if (NetworkInterfaces.Count > 0) sb.Append($", interfaces {string.Join(' ', NetworkInterfaces.Select(n => n.MacAddress ?? n.Name))}");
        if (BondingMode is not null) sb.Append($", bond {BondName} ({BondingMode})");
        sb.Append($", ospkg {string.Join(" , ", OsPackagePointers)}");
        return sb.ToString();
    }
}
