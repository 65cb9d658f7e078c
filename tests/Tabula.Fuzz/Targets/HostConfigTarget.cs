using System.Net.Sockets;
using Tabula.Packaging;

namespace Tabula.Fuzz.Targets;

/// <summary>Host configuration JSON; an accepted one keeps the promises stboot's network setup relies on.</summary>
public static class HostConfigTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        HostConfig config;
        try { config = HostConfig.Parse(input); }
        catch (PackageFormatException) { return false; }

        if (config.NetworkMode == NetworkMode.Static)
            FuzzFinding.Check(config.HostAddress is not null && config.Gateway is not null, "host config: static without address or gateway", input);
        if (config.HostAddress is { } address)
            FuzzFinding.Check(config.PrefixLength is >= 0 && config.PrefixLength <= (address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128),
                "host config: prefix length out of range", input);
        FuzzFinding.Check(config.OsPackagePointers.Count > 0 && config.OsPackagePointers.All(p => p.Length > 0), "host config: no package pointer", input);
        FuzzFinding.Check(config.NetworkInterfaces.All(n => n.Name is not null || n.MacAddress is not null), "host config: an interface with neither name nor MAC", input);
        FuzzFinding.Check(config.BondingMode is null || (config.BondName is not null && HostConfig.BondingModes.Contains(config.BondingMode)),
            "host config: bonding without a known mode and a name", input);
        FuzzFinding.Check(HostConfig.Parse(input).ToString() == config.ToString(), "host config: two parses differ", input);
        return true;
    }
}
