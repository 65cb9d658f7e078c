using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tabula.Packaging.Crypto;

namespace Tabula.Packaging;

/// <summary>
/// stboot's request for a boot ticket, POSTed to the trust policy's ticket_url, ≤ 4 KiB of JSON
/// <code>{"identity_key": base64(32), "nonce": base64(32), "machine_class": "relay", "signature": base64(64)}</code>
/// signed with the machine's identity key (the host configuration's <c>tabula_relay.identity_key</c>) over
/// <c>"tabula-boot-ticket-request-v1\n" || nonce || identity public key || UTF-8(machine_class)</c>. machine_class is
/// the trust policy's class; it is omitted when the policy names none (the message then ends with the key).
/// The signature proves the request comes from the holder of the identity key; the nonce makes the answer good for one
/// boot attempt only.
/// </summary>
/// <param name="IdentityKey">The 32-byte Ed25519 identity public key.</param>
/// <param name="Nonce">32 random bytes, fresh per boot attempt.</param>
/// <param name="MachineClass">The class stboot's trust policy names, or null.</param>
/// <param name="Signature">64 bytes.</param>
public sealed record TicketRequest(byte[] IdentityKey, byte[] Nonce, string? MachineClass, byte[] Signature)
{
    /// <summary>The domain separation prefix of the signed message.</summary>
    public static ReadOnlySpan<byte> SignaturePrefix => "tabula-boot-ticket-request-v1\n"u8;

    /// <summary>The machine id of <see cref="IdentityKey"/>.</summary>
    public string MachineId => MachineIdentity.MachineId(IdentityKey);

    /// <summary>The signed message.</summary>
    public static byte[] Message(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> identityPublic, string? machineClass) =>
        [.. SignaturePrefix, .. nonce, .. identityPublic, .. Encoding.UTF8.GetBytes(machineClass ?? "")];

    /// <summary>A signed request. The caller keeps (and zeroes) <paramref name="identityPrivate"/> and <paramref name="nonce"/>;
    /// the record holds its own copy of the nonce (zero it with <see cref="Clear"/>).</summary>
    public static TicketRequest Create(ReadOnlySpan<byte> identityPrivate, ReadOnlySpan<byte> nonce, string? machineClass)
    {
        if (nonce.Length != BootTicketPayload.NonceSize) throw new ArgumentException("a nonce is 32 bytes", nameof(nonce));
        Releases.CheckClassOrNone(machineClass, nameof(machineClass));
        byte[] identityPublic = Ed25519.PublicKeyOf(identityPrivate);
        byte[] signature = Ed25519.Sign(identityPrivate, Message(nonce, identityPublic, machineClass));
        return new TicketRequest(identityPublic, nonce.ToArray(), machineClass, signature);
    }

    /// <summary>True iff <see cref="Signature"/> is the identity key's signature over this request.</summary>
    public bool Verify() =>
        IdentityKey.Length == Ed25519.PublicKeySize && Nonce.Length == BootTicketPayload.NonceSize
        && Ed25519.Verify(IdentityKey, Message(Nonce, IdentityKey, MachineClass), Signature);

    /// <summary>Zeroes the nonce copy.</summary>
    public void Clear() => CryptographicOperations.ZeroMemory(Nonce);

    /// <summary>The request JSON (compact, keys in the documented order).</summary>
    public byte[] ToJson()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteBase64String("identity_key", IdentityKey);
            writer.WriteBase64String("nonce", Nonce);
            if (MachineClass is not null)
                writer.WriteString("machine_class", MachineClass);
            writer.WriteBase64String("signature", Signature);
            writer.WriteEndObject();
        }
        byte[] json = buffer.WrittenSpan.ToArray();
        buffer.Clear();
        return json;
    }

    /// <summary>Parses request JSON (form only: call <see cref="Verify"/>); throws <see cref="BootTicketException"/>.</summary>
    public static TicketRequest Parse(ReadOnlySpan<byte> json)
    {
        const string What = "ticket request";
        if (json.Length > Limits.MaxTicketRequestBytes)
            BootTicketException.Throw<TicketRequest>(TicketError.TooLarge, $"{What} is {json.Length} bytes, over the limit of {Limits.MaxTicketRequestBytes}");
        try
        {
            using var document = JsonFields.ParseObject(json, Limits.MaxTicketRequestBytes, What);
            var fields = new JsonFields(document.RootElement, What);
            byte[] identity = BootTicketException.Base64(fields.RequiredString("identity_key"), Ed25519.PublicKeySize, $"{What}: field \"identity_key\"");
            byte[] nonce = BootTicketException.Base64(fields.RequiredString("nonce"), BootTicketPayload.NonceSize, $"{What}: field \"nonce\"");
            string? machineClass = fields.OptionalString("machine_class");
            if (machineClass is not null && !Releases.IsValidMachineClass(machineClass))
                fields.Invalid("machine_class", $"must be 1-{Releases.MaxMachineClassLength} characters of [a-z0-9-]");
            byte[] signature = BootTicketException.Base64(fields.RequiredString("signature"), Ed25519.SignatureSize, $"{What}: field \"signature\"");
            return new TicketRequest(identity, nonce, machineClass, signature);
        }
        catch (PackageFormatException e) { throw BootTicketException.From(e); }
    }

    /// <summary>Value equality (keys, nonce and signature by content).</summary>
    public bool Equals(TicketRequest? other) =>
        other is not null && IdentityKey.AsSpan().SequenceEqual(other.IdentityKey) && Nonce.AsSpan().SequenceEqual(other.Nonce)
        && MachineClass == other.MachineClass && Signature.AsSpan().SequenceEqual(other.Signature);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(MachineClass, IdentityKey.Length > 0 ? IdentityKey[0] : 0);
}
