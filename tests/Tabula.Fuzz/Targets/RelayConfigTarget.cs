using Tabula.Fleet.Protocol;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// /etc/tabula/relay.json as the relay agent reads it (Tabula.Fleet.Protocol RelayConfig). An accepted file has a
/// plain https fleet URL; written again it gives the same bytes, and the writer (Create) accepts its URL: one
/// validation on both sides.
/// </summary>
public static class RelayConfigTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        RelayConfig config;
        try { config = RelayConfig.Parse(input); }
        catch (RelayConfigException) { return false; }

        Uri url = config.FleetUrl;
        FuzzFinding.Check(url.Scheme == Uri.UriSchemeHttps && url.Host.Length > 0 && url.UserInfo.Length == 0
            && url.Query.Length == 0 && url.Fragment.Length == 0, "relay config: the fleet URL is not a plain https base URL", input);
        FuzzFinding.Check(url.OriginalString.Length <= RelayConfig.MaxUrlLength, "relay config: the fleet URL is over the limit", input);

        byte[] written = config.ToJson();
        RelayConfig again;
        try { again = RelayConfig.Parse(written); }
        catch (RelayConfigException e) { FuzzFinding.Fail($"relay config: what the writer wrote does not parse ({e.Reason})", input); return false; }
        FuzzFinding.Check(again.FleetUrl.OriginalString == url.OriginalString && again.ToJson().AsSpan().SequenceEqual(written),
            "relay config: parse, write, parse changed it", input);
        try { FuzzFinding.Check(RelayConfig.Create(url.OriginalString).FleetUrl == url, "relay config: the writer reads the URL differently", input); }
        catch (RelayConfigException e) { FuzzFinding.Fail($"relay config: the writer refuses what the reader accepted ({e.Reason})", input); }
        // The controller list (issue 18): starts with fleet_url, within its bound, no repeats, and the writer takes it as read.
        FuzzFinding.Check(config.FleetUrls.Count is >= 1 and <= RelayConfig.MaxFleetUrls && config.FleetUrls[0] == url
            && config.FleetUrls.Select(u => u.OriginalString).Distinct().Count() == config.FleetUrls.Count
            && again.FleetUrls.SequenceEqual(config.FleetUrls), "relay config: the fleet URL list is out of shape", input);
        try { FuzzFinding.Check(RelayConfig.Create([.. config.FleetUrls.Select(u => u.OriginalString)]).ToJson().AsSpan().SequenceEqual(written), "relay config: the writer writes the list differently", input); }
        catch (RelayConfigException e) { FuzzFinding.Fail($"relay config: the writer refuses the list the reader accepted ({e.Reason})", input); }
        return true;
    }
}
