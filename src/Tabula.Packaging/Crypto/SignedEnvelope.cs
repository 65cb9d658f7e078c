using System.Buffers;
using System.Text.Json;

namespace Tabula.Packaging.Crypto;

/// <summary>
/// The one signed form the controller's online key writes: <code>{"payload": base64(bytes), "signature": base64(Ed25519(key, prefix || bytes))}</code>
/// Boot tickets and reboot commands both use it, each under its own prefix, so neither can ever pass as the other. Parsing
/// stays with each format (each has its own limits and typed errors); signing and the signed message live here once.
/// </summary>
public static class SignedEnvelope
{
    /// <summary>The signed message: <paramref name="prefix"/> || <paramref name="payload"/>.</summary>
    public static byte[] Message(ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> payload) => [.. prefix, .. payload];

    /// <summary>The envelope's bytes: <paramref name="payload"/> signed under <paramref name="prefix"/> with the 32-byte key seed.</summary>
    public static byte[] Sign(ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> privateKey)
    {
        byte[] signature = Ed25519.Sign(privateKey, Message(prefix, payload));
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteBase64String("payload", payload);
            writer.WriteBase64String("signature", signature);
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>True iff <paramref name="signature"/> is <paramref name="publicKey"/>'s over <paramref name="prefix"/> || <paramref name="payload"/>.</summary>
    public static bool Verify(ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> signature, ReadOnlySpan<byte> publicKey) =>
        publicKey.Length == Ed25519.PublicKeySize && Ed25519.Verify(publicKey, Message(prefix, payload), signature);
}
