using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Tabula.Fleet.Protocol;

/// <summary>The six line types of the peer stream.</summary>
public enum PeerLineType { Snapshot, Peer, SnapshotEnd, Add, Remove, Heartbeat }

/// <summary>
/// One line of the peer stream (docs/fleet.md "Peer stream"), one JSON object per line:
/// <code>
/// {"type":"snapshot","revision":R,"peers":N}
/// {"type":"peer","public_key":"…","allowed_ips":["10.64.0.2/32","fc00:bbbb:bbbb:bb01::2/128"]}
/// {"type":"snapshot_end","revision":R,"hash":"64 hex"}
/// {"type":"add"|"remove","revision":R,"public_key":"…","allowed_ips":[…],"hash":"64 hex"}
/// {"type":"heartbeat","revision":R}
/// </code>
/// <see cref="PeerLineWriter"/> writes them, <see cref="Parse"/> reads them strictly: every peer has exactly one IPv4
/// /32 and one IPv6 /128, keys are 32 bytes, hashes 32 bytes of lowercase hex; unknown fields are skipped (a newer
/// controller may add some). Anything else is a <see cref="PeerStreamException"/>, and the agent resubscribes rather
/// than guess.
/// </summary>
public sealed record PeerLine(PeerLineType Type, long Revision, long Count, WireGuardPublicKey? PublicKey, IPAddress? Ipv4, IPAddress? Ipv6, byte[]? Hash)
{
    /// <summary>Longest line accepted, newline excluded. The longest line written is about 200 bytes.</summary>
    public const int MaxBytes = 4096;

    /// <summary>The peer fields of a peer, add or remove line (all three are set on those).</summary>
    [MemberNotNullWhen(true, nameof(PublicKey), nameof(Ipv4), nameof(Ipv6))]
    public bool HasPeer => PublicKey is not null && Ipv4 is not null && Ipv6 is not null;

    /// <summary>Parses one line without its newline. Throws <see cref="PeerStreamException"/> on any malformed input.</summary>
    public static PeerLine Parse(ReadOnlySpan<byte> line)
    {
        if (line.Length > MaxBytes) throw new PeerStreamException(PeerStreamError.LineTooLong, $"a line of {line.Length} bytes (limit {MaxBytes})");
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
                        if (key.Length != WireGuardPublicKey.Size) throw Bad("public_key is not 32 bytes");
                        break;
                    case "hash":
                        string text = reader.GetString() ?? "";
                        if (text.Length != 2 * PeerSetHash.Size || text.Any(c => c is not (>= '0' and <= '9' or >= 'a' and <= 'f'))) throw Bad("hash is not 64 hex digits");
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
            if (!IPAddress.TryParse(v4, out ipv4) || ipv4.AddressFamily != AddressFamily.InterNetwork
                || !IPAddress.TryParse(v6, out ipv6) || ipv6.AddressFamily != AddressFamily.InterNetworkV6 || ipv6.ScopeId != 0)
                throw Bad("allowed_ips are not addresses");
        }
        return new PeerLine(kind, revision, count, key is null ? null : WireGuardPublicKey.Own(key), ipv4, ipv6, hash);
    }

    static PeerStreamException Bad(string detail) => new(PeerStreamError.MalformedLine, detail);
}
