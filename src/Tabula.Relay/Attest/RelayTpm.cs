using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Tabula.Tpm;
using Tabula.Tpm.Measurements;

namespace Tabula.Relay.Attest;

/// <summary>
/// The relay's TPM stack on Tabula.Tpm's commands (issue 19, docs/attestation.md), over /dev/tpmrm0 on a relay and a
/// swtpm in tests. <see cref="Open"/> does this boot's TPM work, in this order:
/// <list type="number">
/// <item>reads the EK certificate the manufacturer stored (NV 0x01c00002) and derives the RSA EK from the TCG template
/// (TPM2_CreatePrimary in the endorsement hierarchy), refusing an EK whose key is not the certificate's;</item>
/// <item>makes a fresh attestation key: a storage root key (owner hierarchy), an RSA-2048 restricted signing key under
/// it (TPM2_Create, random every boot), loaded; the SRK is flushed again;</item>
/// <item>last, extends SHA-256 of the fresh WireGuard public key into PCR 14 and appends that event
/// (<see cref="StbootEvent.WireGuardKey"/>) to the log stboot handed over, so the log still replays to the PCRs.</item>
/// </list>
/// The EK and AK stay loaded for the agent's life (two transient objects; with /dev/tpmrm0 the kernel swaps them, and
/// flushes them when the file closes). Answers to challenges and quotes are serialized here.
/// </summary>
/// <remarks>A second <see cref="Open"/> in the same boot would extend PCR 14 with a second key: verifiers then refuse the
/// boot at key-binding (exactly one key is allowed), which is right, since either key could be the one customers use.</remarks>
public sealed class RelayTpm : IRelayTpm, IDisposable
{
    readonly Tpm2 tpm;
    readonly uint ek, ak;
    readonly Lock gate = new();
    readonly byte[] eventLog;
    bool disposed;

    RelayTpm(Tpm2 tpm, uint ek, uint ak, byte[] ekCertificate, byte[] akPublic, byte[] eventLog, int events)
    {
        this.tpm = tpm;
        this.ek = ek;
        this.ak = ak;
        EkCertificate = ekCertificate;
        AkPublic = akPublic;
        this.eventLog = eventLog;
        Events = events;
    }

    /// <inheritdoc />
    public byte[] EkCertificate { get; }

    /// <inheritdoc />
    public byte[] AkPublic { get; }

    /// <summary>Events in <see cref="EventLog"/> (stboot's and the WireGuard key's).</summary>
    public int Events { get; }

    /// <summary>
    /// Does the boot's TPM work (see the type) on <paramref name="tpm"/>, which the result owns from then on (it is
    /// disposed with it, or here when this throws). <paramref name="handedOver"/> is stboot's log (<see cref="EventLog.Empty"/>
    /// when stboot measured nothing: verifiers then refuse the boot at measured-boot).
    /// </summary>
    /// <exception cref="TpmException">A command failed or the TPM answered what it should not.</exception>
    public static RelayTpm Open(Tpm2 tpm, EventLog handedOver, ReadOnlySpan<byte> wireGuardPublicKey)
    {
        ArgumentNullException.ThrowIfNull(tpm);
        ArgumentNullException.ThrowIfNull(handedOver);
        if (wireGuardPublicKey.Length != 32)
            throw new ArgumentException("a WireGuard public key is 32 bytes", nameof(wireGuardPublicKey));
        uint? ek = null, ak = null;
        try
        {
            tpm.Startup();   // false when the firmware (or stboot) started it already
            byte[] certificate = tpm.ReadEkCertificate(TpmAlgorithm.Rsa);
            var ekObject = tpm.CreatePrimary(TpmHandles.Endorsement, TpmTemplates.EkRsa2048);
            ek = ekObject.Handle;
            CheckEkMatchesCertificate(ekObject.Public, certificate);
            var srk = tpm.CreatePrimary(TpmHandles.Owner, TpmTemplates.SrkRsa2048);
            TpmObject akObject;
            try
            {
                akObject = tpm.Load(srk.Handle, tpm.Create(srk.Handle, TpmTemplates.AkRsa2048));
            }
            finally
            {
                tpm.FlushContext(srk.Handle);
            }
            ak = akObject.Handle;
            // Last: everything before can fail and be tried again without measuring a key twice.
            var measured = MeasuredEvent.OfData(StbootPcr.Identity, StbootEvent.WireGuardKey, wireGuardPublicKey);
            tpm.PcrExtendSha256(measured.Pcr, measured.Sha256);
            var log = handedOver.Append(measured);
            return new RelayTpm(tpm, ekObject.Handle, akObject.Handle, certificate, akObject.Public.Encoded, log.ToBytes(), log.Events.Count);
        }
        catch
        {
            foreach (uint? handle in (uint?[])[ak, ek])
                if (handle is { } h)
                    try { tpm.FlushContext(h); } catch (TpmException) { }
            tpm.Dispose();
            throw;
        }
    }

    /// <summary>The EK the template gives must be the key the manufacturer certified, or every challenge fails (a TPM whose
    /// EK was made from another template): said here, at start, rather than as a failed activation later.</summary>
    static void CheckEkMatchesCertificate(TpmPublic ek, byte[] certificate)
    {
        try
        {
            using var cert = X509CertificateLoader.LoadCertificate(certificate);
            using var rsa = cert.GetRSAPublicKey();
            if (rsa is null || !rsa.ExportParameters(false).Modulus.AsSpan().SequenceEqual(ek.RsaModulus))
                throw new TpmFormatException(TpmFormatError.InvalidValue, "EK certificate (not the key of the TCG RSA-2048 EK template)");
        }
        catch (CryptographicException e)
        {
            throw new TpmFormatException(TpmFormatError.InvalidValue, "EK certificate (not DER: " + e.Message + ")");
        }
    }

    /// <inheritdoc />
    public byte[]? Activate(byte[] credentialBlob, byte[] encryptedSecret)
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            try
            {
                return tpm.ActivateCredential(ak, ek, credentialBlob, encryptedSecret);
            }
            catch (TpmErrorException)
            {
                return null;   // made for another EK or AK, or malformed: the TPM refuses, the verifier's check fails
            }
        }
    }

    /// <inheritdoc />
    public (byte[] Attest, byte[] Signature) Quote(byte[] qualifyingData)
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            var quote = tpm.Quote(ak, qualifyingData, PcrSelection.Of(TpmAlgorithm.Sha256, StbootPcr.Quoted));
            return (quote.Attest, quote.Signature.ToBytes());
        }
    }

    /// <inheritdoc />
    public byte[] EventLog() => eventLog;

    /// <summary>Flushes the EK and AK and closes the TPM.</summary>
    public void Dispose()
    {
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
            foreach (uint handle in (uint[])[ak, ek])
                try { tpm.FlushContext(handle); } catch (TpmException) { }
            tpm.Dispose();
        }
    }
}
