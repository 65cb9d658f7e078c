using Tabula.WireGuard;
using Tabula.WireGuard.Uapi;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// A wireguard-go reply to get=1, read as UapiWireGuardControl reads it: lines through the line reader into the
/// parser until the closing empty line, then the device state built.
/// </summary>
public static class WireGuardUapiTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        try
        {
            using var parser = new UapiGetParser();
            var reader = new UapiLineReader(new MemoryStream(input.ToArray(), writable: false), new byte[Limits.UapiReadBufferBytes]);
            while (true)
            {
                // A MemoryStream completes synchronously, so the ValueTask is already done.
                if (!reader.ReadLineAsync(CancellationToken.None).GetAwaiter().GetResult())
                    return false;   // production: Truncated
                if (!parser.Accept(reader.Line))
                    break;
            }
            using var state = parser.ToDeviceState("wg0");
            FuzzFinding.Check(state.Peers.Count <= Limits.MaxPeers, "UAPI: more peers than the limit", input);
            FuzzFinding.Check(state.Peers.Sum(p => (long)p.AllowedIps.Count) <= Limits.MaxAllowedIps, "UAPI: more allowed IPs than the limit", input);
            FuzzFinding.Check(state.PrivateKey is null == state.PublicKey is null, "UAPI: public key without private key", input);
            return true;
        }
        catch (WireGuardProtocolException) { return false; }
    }
}
