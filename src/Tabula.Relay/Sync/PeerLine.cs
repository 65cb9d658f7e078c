using System.Net;
using System.Text.Json;

namespace Tabula.Relay.Sync;

public enum PeerLineType { Snapshot, Peer, SnapshotEnd, Add, Remove, Heartbeat }

/// <summary>
/// One line of the peer stream (docs/fleet.md "Peer stream"), parsed strictly: every peer has exactly one IPv4 /32 and
/// one IPv6 /128, keys are 32 bytes, hashes 32 bytes of lowercase hex. Anything else is a
/// <see cref="PeerStreamException"/>, and the agent resubscribes rather than guess.
/// </summary>
public sealed record PeerLine(PeerLineType Type, long Revision, long Count, byte[]? PublicKey, IPAddress? Ipv4, IPAddress? Ipv6, byte[]? Hash)
{
    public const int MaxBytes = 4096;

    public static PeerLine Parse(ReadOnlySpan<byte> line)
    {
        if (line.Length > MaxBytes) throw new PeerStreamException("line_too_long", $"a line of {line.Length} bytes (limit {MaxBytes})");
        string? type = null, v4 = null, v6 = null;
        long revision = -1, count = -1;
        byte[]? key = null, hash = null;
        int ips = 0;
        var reader = new Utf8JsonReader(line, new JsonReaderOptions { MaxDepth = 4 });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw Bad("not a JSON object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string name = reader.GetString()!;
                reader.Read();
                switch (name)
                {
                    case "type": type = reader.GetString(); break;
                    case "revision": revision = reader.GetInt64(); break;
                    case "peers": count = reader.GetInt64(); break;
                    case "public_key":
                        key = reader.GetBytesFromBase64();
                        if (key.Length != 32) throw Bad("public_key is not 32 bytes");
                        break;
                    case "hash":
                        string text = reader.GetString() ?? "";
                        if (text.Length != 64 || text.Any(c => c is not (>= '0' and <= '9' or >= 'a' and <= 'f'))) throw Bad("hash is not 64 hex digits");
                        hash = Convert.FromHexString(text);
                        break;
                    case "allowed_ips":
                        if (reader.TokenType != JsonTokenType.StartArray) throw Bad("allowed_ips is not an array");
                        while (reader.Read() && reader.TokenType == JsonTokenType.String)
                        {
                            string ip = reader.GetString()!;
                            if (++ips > 2) throw Bad("more than two allowed_ips");
                            if (ip.EndsWith("/32", StringComparison.Ordinal) && v4 is null) v4 = ip[..^3];
                            else if (ip.EndsWith("/128", StringComparison.Ordinal) && v6 is null) v6 = ip[..^4];
                            else throw Bad("allowed_ips must be one IPv4 /32 and one IPv6 /128");
                        }
                        if (reader.TokenType != JsonTokenType.EndArray) throw Bad("allowed_ips holds a non-string");
                        break;
                    default: reader.Skip(); break;   // newer controllers may add fields
                }
            }
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read()) throw Bad("trailing data");
        }
        catch (JsonException e) { throw Bad($"invalid JSON ({e.Message.Split('.')[0]})"); }
        catch (InvalidOperationException) { throw Bad("a field has the wrong type"); }
        catch (FormatException) { throw Bad("a field has the wrong form"); }

        var kind = type switch
        {
            "snapshot" => PeerLineType.Snapshot, "peer" => PeerLineType.Peer, "snapshot_end" => PeerLineType.SnapshotEnd,
            "add" => PeerLineType.Add, "remove" => PeerLineType.Remove, "heartbeat" => PeerLineType.Heartbeat,
            _ => throw Bad(type is null ? "no type" : "unknown type"),
        };
        bool hasPeer = kind is PeerLineType.Peer or PeerLineType.Add or PeerLineType.Remove;
        if (kind != PeerLineType.Peer && revision < 0) throw Bad($"{type} without a revision");
        if (kind == PeerLineType.Snapshot && count < 0) throw Bad("snapshot without a peer count");
        if (kind is PeerLineType.SnapshotEnd or PeerLineType.Add or PeerLineType.Remove && hash is null) throw Bad($"{type} without a hash");
        IPAddress? ipv4 = null, ipv6 = null;
        if (hasPeer)
        {
            if (key is null || v4 is null || v6 is null) throw Bad($"{type} without public_key and both allowed_ips");
            if (!IPAddress.TryParse(v4, out ipv4) || ipv4.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork
                || !IPAddress.TryParse(v6, out ipv6) || ipv6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
                throw Bad("allowed_ips are not addresses");
        }
        return new PeerLine(kind, revision, count, key, ipv4, ipv6, hash);
    }

    static PeerStreamException Bad(string detail) => new("malformed_line", detail);
}

/// <summary>The peer stream broke its contract; the message never holds key or address text.</summary>
public sealed class PeerStreamException(string reason, string detail) : Exception($"{reason}: {detail}")
{
    public string Reason { get; } = reason;
}
