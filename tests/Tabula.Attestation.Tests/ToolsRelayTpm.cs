using System.Buffers.Binary;
using System.Security.Cryptography;
using Tabula.Qemu;
using Tabula.Tpm.Measurements;

namespace Tabula.Testing;

/// <summary>
/// A relay's TPM for verifier tests: a real swtpm manufactured by a lab CA, driven by tpm2-tools (the independent
/// implementation): EK and AK made with tpm2_createek/tpm2_createak, PCRs extended with tpm2_pcrextend, quotes with
/// tpm2_quote, the verifier's challenge answered with tpm2_activatecredential. It keeps the crypto-agile event log of what it
/// extended (Tabula.Tpm's <see cref="Tabula.Tpm.Measurements.EventLog"/>), as stboot and the relay agent do. Disposing stops swtpm.
/// </summary>
public sealed class ToolsRelayTpm : IDisposable
{
    readonly string dir;
    readonly Tabula.Qemu.Swtpm swtpm;
    Tabula.Tpm.Measurements.EventLog log = Tabula.Tpm.Measurements.EventLog.Empty;

    public ToolsRelayTpm(string directory, TpmManufacturer manufacturer)
    {
        dir = directory;
        Directory.CreateDirectory(dir);
        Tabula.Qemu.Swtpm.Manufacture(Path.Combine(dir, "state"), manufacturer);
        swtpm = Tabula.Qemu.Swtpm.StartServer(Path.Combine(dir, "state"), Path.Combine(dir, "swtpm.log"));
        Tools("tpm2_nvread", "0x" + Tabula.Qemu.Swtpm.RsaEkCertificateIndex.ToString("x8"), "-o", F("ek.der"));
        EkCertificate = File.ReadAllBytes(F("ek.der"));
        Tools("tpm2_createek", "-c", F("ek.ctx"), "-G", "rsa", "-u", F("ek.pub"));
        Tools("tpm2_createak", "-C", F("ek.ctx"), "-c", F("ak.ctx"), "-G", "rsa", "-g", "sha256", "-s", "rsassa", "-u", F("ak.pub"), "-n", F("ak.name"));
        AkPublic = File.ReadAllBytes(F("ak.pub"))[2..];   // TPM2B_PUBLIC: the TPMT_PUBLIC after its size
        AkName = File.ReadAllBytes(F("ak.name"));
    }

    public byte[] EkCertificate { get; }
    public byte[] AkPublic { get; }
    public byte[] AkName { get; }

    string F(string name) => Path.Combine(dir, name);

    /// <summary>Runs a tool, then flushes the transient objects it left loaded (swtpm has no resource manager and three slots;
    /// the tools reload keys from their context files).</summary>
    string Tools(string tool, params string[] arguments)
    {
        try { return Prerequisites.Run(tool, ["--tcti", swtpm.Tcti, .. arguments]); }
        finally { Prerequisites.Run("tpm2_flushcontext", "--tcti", swtpm.Tcti, "-t"); }
    }

    /// <summary>Why the last <see cref="Activate"/> returned null.</summary>
    public string? LastActivationError { get; private set; }

    /// <summary>Extends <paramref name="pcr"/>'s SHA-256 bank with SHA-256 of <paramref name="data"/> and logs it.</summary>
    public void Measure(int pcr, StbootEvent type, byte[] data) => Extend(pcr, type, SHA256.HashData(data), data);

    /// <summary>Extends with <paramref name="sha256"/> and logs <paramref name="data"/> with it.</summary>
    public void Extend(int pcr, StbootEvent type, byte[] sha256, byte[] data)
    {
        Tools("tpm2_pcrextend", $"{pcr}:sha256={Convert.ToHexStringLower(sha256)}");
        log = log.Append(new MeasuredEvent(pcr, type, sha256, data));
    }

    /// <summary>What stboot measures for a package: archive digest and descriptor (PCR 12), trust policy (13), host config (14).</summary>
    public void MeasureStboot(byte[] archiveSha256, byte[] descriptor, byte[] trustPolicy, byte[] hostConfig)
    {
        Extend(12, StbootEvent.OspkgArchive, archiveSha256, "ospkg.zip"u8.ToArray());
        Measure(12, StbootEvent.OspkgManifest, descriptor);
        Measure(13, StbootEvent.SecurityConfig, trustPolicy);
        Measure(14, StbootEvent.HostConfig, hostConfig);
    }

    /// <summary>The event log of everything extended so far (crypto-agile, SHA-256 only).</summary>
    public byte[] EventLog() => log.ToBytes();

    /// <summary>A quote over sha256:12,13,14 with <paramref name="qualifyingData"/>: TPMS_ATTEST and TPMT_SIGNATURE bytes.</summary>
    public (byte[] Attest, byte[] Signature) Quote(byte[] qualifyingData)
    {
        Tools("tpm2_quote", "-c", F("ak.ctx"), "-l", "sha256:12,13,14", "-q", Convert.ToHexStringLower(qualifyingData), "-g", "sha256",
            "-m", F("quote.msg"), "-s", F("quote.sig"));
        return (File.ReadAllBytes(F("quote.msg")), File.ReadAllBytes(F("quote.sig")));
    }

    /// <summary>
    /// TPM2_ActivateCredential of a verifier's challenge with this TPM's EK and AK (the EK's policy satisfied with
    /// PolicySecret(endorsement)); null when the TPM refuses (the challenge was made for another EK or AK).
    /// </summary>
    public byte[]? Activate(byte[] credentialBlob, byte[] encryptedSecret)
    {
        var file = new MemoryStream();
        void Be32(uint v) { Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteUInt32BigEndian(b, v); file.Write(b); }
        void Be16(ushort v) { Span<byte> b = stackalloc byte[2]; BinaryPrimitives.WriteUInt16BigEndian(b, v); file.Write(b); }
        Be32(0xBADCC0DE); Be32(1);   // tpm2-tools' credential file header
        Be16((ushort)credentialBlob.Length); file.Write(credentialBlob);
        Be16((ushort)encryptedSecret.Length); file.Write(encryptedSecret);
        File.WriteAllBytes(F("cred.in"), file.ToArray());
        File.Delete(F("cred.out"));
        try
        {
            Tools("tpm2_startauthsession", "--policy-session", "-S", F("session.ctx"));
            Tools("tpm2_policysecret", "-S", F("session.ctx"), "-c", "e");
            Tools("tpm2_activatecredential", "-c", F("ak.ctx"), "-C", F("ek.ctx"), "-i", F("cred.in"), "-o", F("cred.out"), "-P", "session:" + F("session.ctx"));
        }
        catch (InvalidOperationException e)
        {
            LastActivationError = e.Message;
            return null;
        }
        finally
        {
            try { Tools("tpm2_flushcontext", F("session.ctx")); } catch (InvalidOperationException) { }
        }
        return File.ReadAllBytes(F("cred.out"));
    }

    public void Dispose() => swtpm.Dispose();
}
