using System.Security.Cryptography;
using System.Text;

namespace Tabula.Fleet.Protocol;

/// <summary>
/// What a relay agent signs to enroll, with its long-lived Ed25519 identity key:
/// <code>tabula-enroll-v1\n{nonce hex}\n{wireguard key base64}\n{package digest hex}\n</code>
/// The nonce comes from the controller (single use, short-lived), so a captured enrollment cannot be
/// replayed; the signature binds the fresh WireGuard key and booted package to the identity, so it
/// cannot be forged without the identity's private key. The enrollment token (a bearer secret in the
/// host configuration) keeps strangers from filling the awaiting list.
/// </summary>
public static class Enrollment
{
    public static byte[] Message(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> wireGuardKey, string packageDigest) =>
        Encoding.ASCII.GetBytes(
            $"tabula-enroll-v1\n{Convert.ToHexStringLower(nonce)}\n{Convert.ToBase64String(wireGuardKey)}\n{packageDigest}\n");

    /// <summary>Machine id: the first 16 bytes of SHA-256 of the identity key, in hex. Defined once, in
    /// <see cref="Tabula.Packaging.MachineIdentity.MachineId"/>: stboot names the machine in its ticket request with it.</summary>
    public static string MachineId(ReadOnlySpan<byte> identityKey) => Tabula.Packaging.MachineIdentity.MachineId(identityKey);

    public static bool IsDigest(string? text) =>
        text is { Length: 64 } && text.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');

    /// <summary>
    /// What the relay prints on its console and staff compare on the dashboard before deploying it: 8 groups of 4 hex
    /// digits of SHA-256 over the identity key and this boot's WireGuard key, so it changes at every boot.
    /// </summary>
    public static string Fingerprint(ReadOnlySpan<byte> identityKey, ReadOnlySpan<byte> wireGuardKey)
    {
        byte[] hash = SHA256.HashData([.. identityKey, .. wireGuardKey]);
        string hex = Convert.ToHexStringLower(hash.AsSpan(0, 16));
        return string.Join('-', Enumerable.Range(0, 8).Select(i => hex.Substring(i * 4, 4)));
    }
}
