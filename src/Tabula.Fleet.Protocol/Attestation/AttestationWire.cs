using System.Security.Cryptography;
using System.Text.Json.Serialization;

namespace Tabula.Fleet.Protocol;

// Attestation on the wire (issue 19, docs/attestation.md): at enrollment between the relay agent and the controller
// (appended, optional fields of /relay/v1, so an older agent or controller reads the rest as before), and in the tunnel
// between a customer's `tabula relay attest` and the relay's attestation service on its gateway address. Binary TPM
// structures travel as base64 of their TPM wire bytes (big-endian, as the TPM produced them); certificates as base64 DER.

/// <summary>
/// The TPM's keys a verifier challenges: the EK certificate (from the TPM's NV index, base64 DER) and the AK's public
/// area (TPMT_PUBLIC as the TPM returned it, base64). Sent in the body of POST /relay/v1/enroll/nonce, and answered by
/// GET /attest/v1/keys in the tunnel.
/// </summary>
public sealed record AttestationKeys(string? EkCertificate, string? AkPublic);

/// <summary>
/// A credential-activation challenge (TPM2_MakeCredential's output, made by the verifier with the EK's public key for
/// the AK's name): the TPM answers it only if the AK sits next to that EK. Base64 of TPM2B_ID_OBJECT's and
/// TPM2B_ENCRYPTED_SECRET's contents.
/// </summary>
public sealed record CredentialChallenge(string? CredentialBlob, string? EncryptedSecret);

/// <summary>
/// What a relay proves with: its keys, the activation answer (the secret of the verifier's <see cref="CredentialChallenge"/>,
/// base64), a quote over PCRs 12-14 (TPMS_ATTEST bytes and TPMT_SIGNATURE bytes, base64) whose extraData is
/// <see cref="AttestationBinding.QualifyingData"/>, and the TCG crypto-agile event log that replays to the quoted PCRs (base64).
/// </summary>
public sealed record AttestationEvidence(string? EkCertificate, string? AkPublic, string? ActivationSecret, string? Quote,
    string? QuoteSignature, string? EventLog);

/// <summary>The controller's verdict on an enrollment's evidence: <c>status</c> is <c>attested</c>, <c>failed</c> (with the step
/// and why) or <c>absent</c> (no evidence sent); with <c>attested</c>, the AK certificate the controller issued (base64 DER).</summary>
public sealed record AttestationOutcome(string Status, string? FailedStep = null, string? Detail = null, string? AkCertificate = null);

/// <summary>POST /attest/v1/quote in the tunnel: the customer's nonce (hex, 16-64 bytes) and its own challenge for the AK.</summary>
public sealed record AttestQuoteRequest(string? Nonce, CredentialChallenge? Challenge);

/// <summary>
/// The relay's answer to <see cref="AttestQuoteRequest"/>: its WireGuard public key (base64), fresh evidence whose quote
/// binds the customer's nonce to that key, and the AK certificate the controller issued at enrollment (base64 DER; a
/// convenience, the customer checks the AK itself).
/// </summary>
public sealed record AttestQuoteResponse(string WireguardPublicKey, AttestationEvidence Evidence, string? AkCertificate = null);

/// <summary>The qualifying data both verifiers expect in a quote, and the in-tunnel service's address.</summary>
public static class AttestationBinding
{
    /// <summary>The TCP port of the relay's attestation service on its gateway addresses (plain HTTP inside the tunnel: the
    /// tunnel is the channel, and every answer is checked against the TPM, not the transport).</summary>
    public const int Port = 8019;

    /// <summary>Paths of the in-tunnel service.</summary>
    public const string KeysPath = "/attest/v1/keys", QuotePath = "/attest/v1/quote";

    /// <summary>Bounds of a customer's nonce.</summary>
    public const int MinNonceBytes = 16, MaxNonceBytes = 64;

    /// <summary>
    /// SHA-256(nonce ‖ WireGuard public key): the quote's extraData, at enrollment (the controller's nonce) and in the
    /// tunnel (the customer's). A quote made for one key or one nonce does not verify for another.
    /// </summary>
    public static byte[] QualifyingData(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> wireGuardKey)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(nonce);
        hash.AppendData(wireGuardKey);
        return hash.GetHashAndReset();
    }
}

/// <summary>The source-generated JSON context of the in-tunnel attestation service (snake_case, like the relay wire).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AttestationKeys))]
[JsonSerializable(typeof(AttestQuoteRequest))]
[JsonSerializable(typeof(AttestQuoteResponse))]
[JsonSerializable(typeof(ErrorBody))]
public sealed partial class AttestationWireJson : JsonSerializerContext;
