using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tabula.Packaging.Crypto;

namespace Tabula.Packaging;

/// <summary>
/// What a boot ticket says (the signed payload):
/// <code>{"version": 1, "machine_id": "&lt;32 hex&gt;", "nonce": base64(32), "package_sha256": "&lt;64 hex&gt;",
///  "min_release": N, "machine_class": "relay", "issued_at": unix seconds}</code>
/// machine_class may be omitted (the controller names no class); every other field is required.
/// </summary>
/// <param name="MachineId">The machine it was issued to (<see cref="MachineIdentity.MachineId"/> of its identity key).</param>
/// <param name="Nonce">The 32-byte nonce of the request it answers.</param>
/// <param name="PackageSha256">The archive this machine should boot now.</param>
/// <param name="MinRelease">The floor of the machine's class (0: none).</param>
/// <param name="MachineClass">The machine's class, or null.</param>
/// <param name="IssuedAt">Unix seconds at the controller.</param>
public sealed record BootTicketPayload(string MachineId, byte[] Nonce, Sha256Digest PackageSha256, long MinRelease,
    string? MachineClass, long IssuedAt)
{
    /// <summary>The only payload version written and read.</summary>
    public const int CurrentVersion = 1;

    /// <summary>Nonce length in bytes.</summary>
    public const int NonceSize = 32;

    /// <summary>The payload JSON (compact, keys in the documented order); throws <see cref="ArgumentException"/> for
    /// values the reader would refuse.</summary>
    public byte[] ToJson()
    {
        if (!MachineIdentity.IsMachineId(MachineId)) throw new ArgumentException("machine_id must be 32 lowercase hex digits", nameof(MachineId));
        if (Nonce is not { Length: NonceSize }) throw new ArgumentException("a nonce is 32 bytes", nameof(Nonce));
        if (PackageSha256.Bytes.Length != Sha256Digest.Size) throw new ArgumentException("no package digest", nameof(PackageSha256));
        if (!Releases.IsValidFloor(MinRelease)) throw new ArgumentOutOfRangeException(nameof(MinRelease), MinRelease, $"min_release is 0-{Releases.MaxRelease}");
        Releases.CheckClassOrNone(MachineClass, nameof(MachineClass));
        if (IssuedAt < 0) throw new ArgumentOutOfRangeException(nameof(IssuedAt), IssuedAt, "issued_at is unix seconds");
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteNumber("version", CurrentVersion);
            writer.WriteString("machine_id", MachineId);
            writer.WriteBase64String("nonce", Nonce);
            writer.WriteString("package_sha256", PackageSha256.Hex);
            writer.WriteNumber("min_release", MinRelease);
            if (MachineClass is not null)
                writer.WriteString("machine_class", MachineClass);
            writer.WriteNumber("issued_at", IssuedAt);
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Parses payload JSON; throws <see cref="BootTicketException"/>.</summary>
    public static BootTicketPayload Parse(ReadOnlySpan<byte> json)
    {
        const string What = "boot ticket payload";
        try
        {
            using var document = JsonFields.ParseObject(json, Limits.MaxBootTicketBytes, What);
            var fields = new JsonFields(document.RootElement, What);
            long version = fields.RequiredInteger("version");
            if (version != CurrentVersion)
                PackageFormatException.Throw(FormatError.UnsupportedVersion, $"{What}: version {version} is not supported (only {CurrentVersion})");
            string machineId = fields.RequiredString("machine_id");
            if (!MachineIdentity.IsMachineId(machineId)) fields.Invalid("machine_id", "must be 32 lowercase hex digits");
            byte[] nonce = BootTicketException.Base64(fields.RequiredString("nonce"), NonceSize, $"{What}: field \"nonce\"");
            var digest = Sha256Digest.Parse(fields.RequiredString("package_sha256"), $"{What}: field \"package_sha256\"");
            long floor = fields.RequiredInteger("min_release");
            if (!Releases.IsValidFloor(floor)) fields.Invalid("min_release", $"must be 0-{Releases.MaxRelease}");
            string? machineClass = fields.OptionalString("machine_class");
            if (machineClass is not null && !Releases.IsValidMachineClass(machineClass))
                fields.Invalid("machine_class", $"must be 1-{Releases.MaxMachineClassLength} characters of [a-z0-9-]");
            long issuedAt = fields.RequiredInteger("issued_at");
            if (issuedAt < 0) fields.Invalid("issued_at", "must be unix seconds (not negative)");
            return new BootTicketPayload(machineId, nonce, digest, floor, machineClass, issuedAt);
        }
        catch (PackageFormatException e) { throw BootTicketException.From(e); }
    }

    /// <summary>True when <paramref name="nonce"/> is this ticket's nonce (constant time).</summary>
    public bool HasNonce(ReadOnlySpan<byte> nonce) => CryptographicOperations.FixedTimeEquals(Nonce, nonce);

    /// <summary>Value equality (the nonce by content).</summary>
    public bool Equals(BootTicketPayload? other) =>
        other is not null && MachineId == other.MachineId && Nonce.AsSpan().SequenceEqual(other.Nonce) && PackageSha256 == other.PackageSha256
        && MinRelease == other.MinRelease && MachineClass == other.MachineClass && IssuedAt == other.IssuedAt;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(MachineId, PackageSha256, MinRelease, IssuedAt);
}

/// <summary>
/// A boot ticket: the fleet controller's answer to a <see cref="TicketRequest"/>, ≤ 4 KiB of JSON
/// <code>{"payload": base64(payload JSON bytes), "signature": base64(Ed25519(ticket key, "tabula-boot-ticket-v1\n" || payload bytes))}</code>
/// The ticket key is the controller's own online key, pinned in stboot's trust policy folder (ticket_root.pem). A
/// ticket only chooses among packages the offline signers signed: stboot checks the package signatures first.
/// <see cref="Parse"/> checks the form; <see cref="VerifySignature"/> the signature; the boot decision is stboot's.
/// </summary>
public sealed class BootTicket
{
    /// <summary>The domain separation prefix of the signed message.</summary>
    public static ReadOnlySpan<byte> SignaturePrefix => "tabula-boot-ticket-v1\n"u8;

    readonly byte[] payloadBytes, signature, bytes;

    BootTicket(BootTicketPayload payload, byte[] payloadBytes, byte[] signature, byte[] bytes)
    {
        Payload = payload;
        this.payloadBytes = payloadBytes;
        this.signature = signature;
        this.bytes = bytes;
    }

    /// <summary>What the ticket says.</summary>
    public BootTicketPayload Payload { get; }

    /// <summary>The payload exactly as signed.</summary>
    public ReadOnlySpan<byte> PayloadBytes => payloadBytes;

    /// <summary>The ticket exactly as received (what stboot hands over, what the relay reports).</summary>
    public ReadOnlySpan<byte> Bytes => bytes;

    /// <summary>The signed message: <see cref="SignaturePrefix"/> || payload bytes.</summary>
    public static byte[] Message(ReadOnlySpan<byte> payloadBytes) => SignedEnvelope.Message(SignaturePrefix, payloadBytes);

    /// <summary>A ticket's bytes: <paramref name="payload"/> signed with the 32-byte ticket key seed.</summary>
    public static byte[] Sign(BootTicketPayload payload, ReadOnlySpan<byte> ticketPrivateKey)
    {
        ArgumentNullException.ThrowIfNull(payload);
        byte[] ticket = SignedEnvelope.Sign(SignaturePrefix, payload.ToJson(), ticketPrivateKey);
        if (ticket.Length > Limits.MaxBootTicketBytes)
            throw new ArgumentException($"the ticket would be {ticket.Length} bytes, over the limit of {Limits.MaxBootTicketBytes}");
        return ticket;
    }

    /// <summary>Parses a ticket and its payload; throws <see cref="BootTicketException"/> (never anything else for bad input).</summary>
    public static BootTicket Parse(ReadOnlySpan<byte> ticket)
    {
        const string What = "boot ticket";
        if (ticket.Length > Limits.MaxBootTicketBytes)
            BootTicketException.Throw<BootTicket>(TicketError.TooLarge, $"{What} is {ticket.Length} bytes, over the limit of {Limits.MaxBootTicketBytes}");
        string payloadText, signatureText;
        try
        {
            using var document = JsonFields.ParseObject(ticket, Limits.MaxBootTicketBytes, What);
            var fields = new JsonFields(document.RootElement, What);
            payloadText = fields.RequiredString("payload");
            signatureText = fields.RequiredString("signature");
        }
        catch (PackageFormatException e) { throw BootTicketException.From(e); }
        byte[] payloadBytes = BootTicketException.Base64(payloadText, Limits.MaxBootTicketBytes, $"{What}: field \"payload\"", exact: false);
        byte[] sig = BootTicketException.Base64(signatureText, Ed25519.SignatureSize, $"{What}: field \"signature\"");
        var payload = BootTicketPayload.Parse(payloadBytes);
        return new BootTicket(payload, payloadBytes, sig, ticket.ToArray());
    }

    /// <summary>True iff the ticket is signed by <paramref name="ticketRootPublic"/> (the 32-byte key of ticket_root.pem).</summary>
    public bool VerifySignature(ReadOnlySpan<byte> ticketRootPublic) =>
        SignedEnvelope.Verify(SignaturePrefix, payloadBytes, signature, ticketRootPublic);

    /// <summary><see cref="VerifySignature"/>, throwing <see cref="TicketError.BadSignature"/> when it fails.</summary>
    public void EnsureSignedBy(ReadOnlySpan<byte> ticketRootPublic)
    {
        if (!VerifySignature(ticketRootPublic))
            BootTicketException.Throw<bool>(TicketError.BadSignature, "the boot ticket is not signed by the ticket root (an unknown key, or tampered)");
    }

    /// <summary>The ticket bytes as base64 (how the hand-over and the relay carry it).</summary>
    public string ToBase64() => Convert.ToBase64String(bytes);

    /// <inheritdoc/>
    public override string ToString() =>
        $"ticket machine={Payload.MachineId} package=sha256:{Payload.PackageSha256.Hex} min_release={Payload.MinRelease} issued_at={Payload.IssuedAt}";
}
