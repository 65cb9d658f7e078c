using System.Buffers;
using System.Text.Json;
using Tabula.Fleet.Protocol;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// One peer-stream line. An accepted line, written again in the documented shape (docs/fleet.md "Peer stream") and
/// parsed, gives the same line; the fields its type needs are there.
/// </summary>
public static class PeerLineTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        PeerLine line;
        try { line = PeerLine.Parse(input); }
        catch (PeerStreamException) { return false; }

        bool hasPeer = line.Type is PeerLineType.Peer or PeerLineType.Add or PeerLineType.Remove;
        FuzzFinding.Check(!hasPeer || (line.PublicKey is { Bytes.Length: 32 } && line.Ipv4 is not null && line.Ipv6 is not null), "peer line: peer fields missing", input);
        FuzzFinding.Check(line.Hash is null || line.Hash.Length == 32, "peer line: hash is not 32 bytes", input);

        var again = PeerLine.Parse(Write(line));
        FuzzFinding.Check(again.Type == line.Type && again.Revision == line.Revision && again.Count == line.Count
            && Equals(again.PublicKey, line.PublicKey) && Same(again.Hash, line.Hash)
            && Equals(again.Ipv4, line.Ipv4) && Equals(again.Ipv6, line.Ipv6), "peer line: parse, write, parse changed it", input);
        return true;
    }

    static bool Same(byte[]? a, byte[]? b) => a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);

    static byte[] Write(PeerLine line)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("type", line.Type switch
            {
                PeerLineType.Snapshot => "snapshot", PeerLineType.Peer => "peer", PeerLineType.SnapshotEnd => "snapshot_end",
                PeerLineType.Add => "add", PeerLineType.Remove => "remove", _ => "heartbeat",
            });
            if (line.Revision >= 0) writer.WriteNumber("revision", line.Revision);
            if (line.Count >= 0) writer.WriteNumber("peers", line.Count);
            if (line.PublicKey is not null) writer.WriteBase64String("public_key", line.PublicKey.Bytes);
            if (line.Ipv4 is not null && line.Ipv6 is not null)
            {
                writer.WriteStartArray("allowed_ips");
                writer.WriteStringValue($"{line.Ipv4}/32");
                writer.WriteStringValue($"{line.Ipv6}/128");
                writer.WriteEndArray();
            }
            if (line.Hash is not null) writer.WriteString("hash", Convert.ToHexStringLower(line.Hash));
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
