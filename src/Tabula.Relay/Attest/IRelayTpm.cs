namespace Tabula.Relay.Attest;

/// <summary>
/// What the relay's attestation needs of its TPM (issue 19): the EK certificate and AK public area, the answer to a
/// verifier's credential-activation challenge, a quote over PCRs 12-14 with given qualifying data, and the event log of
/// this boot (stboot's handed-over log with the relay's own PCR 14 extension). The implementation over /dev/tpmrm0 is
/// Tabula.Tpm's; tests use a real swtpm.
/// </summary>
/// <remarks>Implementations are called from one thread at a time (<see cref="AttestationServer"/> serializes TPM work).</remarks>
public interface IRelayTpm
{
    /// <summary>The EK certificate (DER).</summary>
    byte[] EkCertificate { get; }

    /// <summary>The AK's TPMT_PUBLIC.</summary>
    byte[] AkPublic { get; }

    /// <summary>TPM2_ActivateCredential of a challenge (TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET contents); null when the TPM
    /// refuses it (made for another EK or AK).</summary>
    byte[]? Activate(byte[] credentialBlob, byte[] encryptedSecret);

    /// <summary>TPM2_Quote of sha256:12,13,14 with <paramref name="qualifyingData"/>: TPMS_ATTEST and TPMT_SIGNATURE bytes.</summary>
    (byte[] Attest, byte[] Signature) Quote(byte[] qualifyingData);

    /// <summary>The TCG crypto-agile event log of this boot.</summary>
    byte[] EventLog();
}
