using Tabula.Fleet.Protocol;

namespace Tabula.Fleet.Api;

/// <summary>WireGuard public keys in request bodies: parsed by the wire's one key type, refused as 400 with the field named.</summary>
internal static class KeyInput
{
    public static byte[] Parse(string? text, string field) =>
        WireGuardPublicKey.TryParse(text, out var key) ? key.ToArray()
            : throw new FleetException(FleetError.InvalidInput, $"{field} must be a WireGuard public key: 32 bytes in base64 (44 characters)");
}
