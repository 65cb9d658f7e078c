using System.Security.Cryptography;
using System.Text.Json;
using Tabula.Packaging.Crypto;

namespace Tabula.Packaging;

/// <summary>
/// A machine's long-lived Ed25519 identity: the key in its host configuration's <c>tabula_relay</c> object, with which
/// the relay enrolls and stboot asks for a boot ticket, and the machine id derived from its public half. The one
/// definition of both: the fleet controller (through Tabula.Fleet.Protocol's Enrollment), the relay and stboot call it.
/// </summary>
public static class MachineIdentity
{
    /// <summary>Characters in a machine id (16 bytes in hex).</summary>
    public const int MachineIdLength = 32;

    /// <summary>Machine id: the first 16 bytes of SHA-256 of the identity public key, in lowercase hex.</summary>
    public static string MachineId(ReadOnlySpan<byte> identityPublicKey)
    {
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(identityPublicKey, hash);
        return Convert.ToHexStringLower(hash[..16]);
    }

    /// <summary>True for 32 lowercase hex digits.</summary>
    public static bool IsMachineId(string? text) =>
        text is { Length: MachineIdLength } && text.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');

    /// <summary>
    /// The 32-byte identity private key from a host configuration's <c>"tabula_relay": {"identity_key": base64}</c>.
    /// The caller owns (and zeroes) the returned bytes. Throws <see cref="PackageFormatException"/>:
    /// <see cref="FormatError.MissingEntry"/> when there is no <c>tabula_relay</c> object or no identity_key,
    /// <see cref="FormatError.InvalidKey"/> when it is not base64 of 32 bytes; the message never holds the key.
    /// </summary>
    public static byte[] PrivateKeyFromHostConfig(ReadOnlySpan<byte> hostConfigJson)
    {
        using var document = JsonFields.ParseObject(hostConfigJson, Limits.MaxConfigJsonBytes, "host configuration");
        if (!document.RootElement.TryGetProperty("tabula_relay", out var secrets) || secrets.ValueKind != JsonValueKind.Object)
            return PackageFormatException.Throw<byte[]>(FormatError.MissingEntry, "host configuration has no tabula_relay object (identity_key, enrollment_token)");
        if (!secrets.TryGetProperty("identity_key", out var value) || value.ValueKind != JsonValueKind.String)
            return PackageFormatException.Throw<byte[]>(FormatError.MissingEntry, "tabula_relay.identity_key must be a string");
        // Decoded by the reader (JSON escapes such as \u002B included), never through a string: a string could not be zeroed.
        if (!value.TryGetBytesFromBase64(out byte[]? key))
            PackageFormatException.Throw(FormatError.InvalidKey, "tabula_relay.identity_key is not base64");
        if (key.Length != Ed25519.PrivateKeySize)
        {
            CryptographicOperations.ZeroMemory(key);
            PackageFormatException.Throw(FormatError.InvalidKey,
                $"tabula_relay.identity_key must be {Ed25519.PrivateKeySize} bytes (an Ed25519 private key)");
        }
        return key;
    }
}
