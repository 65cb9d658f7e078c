namespace Tabula.Fleet.Core;

/// <summary>
/// Coordinates of common relay cities, keyed by Mullvad's location code (<c>se-got</c>). Mullvad's app needs a latitude
/// and longitude on every location of the relay list; staff may give them at provision, and otherwise they come from
/// here. A city that is in neither is refused at provision rather than listed at a made-up place.
/// </summary>
public static class CityTable
{
    private static readonly Dictionary<string, (double Latitude, double Longitude)> Cities = new(StringComparer.Ordinal)
    {
        ["at-vie"] = (48.2082, 16.3738), ["au-syd"] = (-33.8688, 151.2093), ["br-sao"] = (-23.5505, -46.6333),
        ["ca-tor"] = (43.6532, -79.3832), ["ca-van"] = (49.2827, -123.1207), ["ch-zrh"] = (47.3769, 8.5417),
        ["de-ber"] = (52.5200, 13.4050), ["de-fra"] = (50.1109, 8.6821), ["dk-cph"] = (55.6761, 12.5683),
        ["es-mad"] = (40.4168, -3.7038), ["fi-hel"] = (60.1699, 24.9384), ["fr-par"] = (48.8566, 2.3522),
        ["gb-lon"] = (51.5074, -0.1278), ["gb-man"] = (53.4808, -2.2426), ["hk-hkg"] = (22.3193, 114.1694),
        ["it-mil"] = (45.4642, 9.1900), ["jp-tyo"] = (35.6762, 139.6503), ["nl-ams"] = (52.3676, 4.9041),
        ["no-osl"] = (59.9139, 10.7522), ["pl-waw"] = (52.2297, 21.0122), ["se-got"] = (57.7089, 11.9746),
        ["se-mma"] = (55.6050, 13.0038), ["se-sto"] = (59.3293, 18.0686), ["sg-sin"] = (1.3521, 103.8198),
        ["us-chi"] = (41.8781, -87.6298), ["us-dal"] = (32.7767, -96.7970), ["us-lax"] = (34.0522, -118.2437),
        ["us-mia"] = (25.7617, -80.1918), ["us-nyc"] = (40.7128, -74.0060), ["us-sea"] = (47.6062, -122.3321),
    };

    /// <summary>The location codes in the table, sorted (for error messages and docs).</summary>
    public static IEnumerable<string> Codes => Cities.Keys.Order(StringComparer.Ordinal);

    /// <summary>The coordinates of <c>COUNTRY-CITY</c>, if the table knows it.</summary>
    public static bool TryGet(string countryCode, string cityCode, out double latitude, out double longitude)
    {
        bool found = Cities.TryGetValue(countryCode + "-" + cityCode, out var c);
        (latitude, longitude) = c;
        return found;
    }
}
