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
        // Decoded from the raw UTF-8 (GetString would leave an unzeroable copy of the key as a string).
        ReadOnlySpan<byte> base64 = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(value);
        base64 = base64[1..^1];   // the quotes; base64 needs no JSON escapes, and one that has them is refused below
        byte[] key = new byte[Ed25519.PrivateKeySize];
        var status = System.Buffers.Text.Base64.DecodeFromUtf8(base64, key, out _, out int written);
        if (status != System.Buffers.OperationStatus.Done || written != Ed25519.PrivateKeySize || base64.Length != 44)
        {
            CryptographicOperations.ZeroMemory(key);
            PackageFormatException.Throw(FormatError.InvalidKey,
                $"tabula_relay.identity_key must be base64 of {Ed25519.PrivateKeySize} bytes (an Ed25519 private key)");
        }
        return key;
    }
}
