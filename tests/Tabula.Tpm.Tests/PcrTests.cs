using System.Security.Cryptography;
using Tabula.Qemu;
using Tabula.Testing;
using Tabula.Tpm;

namespace Tabula.Tpm.Tests;

/// <summary>PCR_Extend, PCR_Read and Startup against a real swtpm, cross-checked with tpm2-tools.</summary>
public sealed class PcrTests
{
    static byte[] Extend(byte[] pcr, byte[] digest) => SHA256.HashData([.. pcr, .. digest]);

    [ToolsFact("swtpm")]
    public void Startup_starts_a_powered_tpm_once()
    {
        using var swtpm = Swtpm.StartServer(startup: false);
        using var tpm = swtpm.Open();
        var refused = Assert.Throws<TpmErrorException>(() => tpm.PcrRead(TpmAlgorithm.Sha256, 0));
        Assert.Equal(TpmRc.Initialize, refused.Code.Base);
        Assert.Equal(TpmCommandCode.PcrRead, refused.Command);

        Assert.True(tpm.Startup());
        Assert.False(tpm.Startup());
        Assert.Equal(new byte[32], tpm.PcrRead(TpmAlgorithm.Sha256, 0)[0]);
    }

    [ToolsFact("swtpm", "tpm2_pcrread")]
    public void Extend_then_read_gives_the_hash_chain_and_tpm2_pcrread_agrees()
    {
        using var swtpm = Swtpm.StartServer();
        using var tpm = swtpm.Open();
        byte[] first = SHA256.HashData("package archive"u8), second = SHA256.HashData("descriptor"u8);
        tpm.PcrExtendSha256(12, first);
        tpm.PcrExtendSha256(12, second);
        tpm.PcrExtendSha256(14, first);

        byte[] expected12 = Extend(Extend(new byte[32], first), second);
        var values = tpm.PcrRead(TpmAlgorithm.Sha256, 12, 13, 14);
        Assert.Equal(expected12, values[12]);
        Assert.Equal(new byte[32], values[13]);
        Assert.Equal(Extend(new byte[32], first), values[14]);

        string output = Path.Combine(swtpm.StateDirectory, "pcrs.bin");
        swtpm.Tools("tpm2_pcrread", "sha256:12,13,14", "-o", output);
        Assert.Equal([.. expected12, .. new byte[32], .. Extend(new byte[32], first)], File.ReadAllBytes(output));
    }

    [ToolsFact("swtpm", "tpm2_pcrextend", "tpm2_pcrread")]
    public void Reading_all_24_pcrs_takes_several_reads_and_matches_tpm2_tools()
    {
        using var swtpm = Swtpm.StartServer();
        byte[] digest = SHA256.HashData("tpm2-tools"u8);
        swtpm.Tools("tpm2_pcrextend", $"23:sha256={Convert.ToHexStringLower(digest)}");
        var recording = new RecordingTransport(swtpm.Connect());
        using var tpm = new Tpm2(recording);

        var values = tpm.PcrRead(TpmAlgorithm.Sha256, Enumerable.Range(0, 24).ToArray());
        Assert.Equal(24, values.Values.Count);
        Assert.True(recording.Exchanges.Count >= 3, "a TPM reads at most 8 PCRs per PCR_Read");
        Assert.Equal(Extend(new byte[32], digest), values[23]);

        string output = Path.Combine(swtpm.StateDirectory, "all.bin");
        swtpm.Tools("tpm2_pcrread", "sha256:all", "-o", output);
        Assert.Equal(values.Values.Values.SelectMany(v => v).ToArray(), File.ReadAllBytes(output));
    }

    [ToolsFact("swtpm")]
    public void Extend_with_a_wrong_password_is_bad_auth_in_session_1()
    {
        using var swtpm = Swtpm.StartServer();
        using var transport = swtpm.Connect();
        var buffer = new byte[TpmLimits.MaxMessageBytes];
        var w = Tpm2.Begin(buffer, TpmCommandCode.PcrExtend, sessions: true);
        w.WriteUInt32(16);
        int auth = w.BeginSized32();
        Tpm2.WritePasswordSession(ref w, "not the pcr's auth"u8);
        w.EndSized32(auth);
        w.WriteUInt32(1);
        w.WriteUInt16((ushort)TpmAlgorithm.Sha256);
        w.WriteBytes(new byte[32]);
        w.PatchUInt32(2, (uint)w.Position);
        var response = new byte[TpmLimits.MaxMessageBytes];
        int n = transport.Execute(w.Written, response);

        var e = Assert.Throws<TpmErrorException>(() => TpmResponse.Parse(response.AsSpan(0, n), TpmCommandCode.PcrExtend, 0, 1));
        Assert.Equal(TpmRc.BadAuth, e.Code.Base);
        Assert.Equal(1, e.Code.Session);
    }

    [ToolsFact("swtpm")]
    public void A_selection_the_tpm_refuses_names_the_parameter()
    {
        using var swtpm = Swtpm.StartServer();
        using var tpm = swtpm.Open();
        // sizeofSelect 4 asks for PCR 31, which the TPM does not have.
        var e = Assert.Throws<TpmErrorException>(() => tpm.PcrReadOnce(PcrSelection.Of(TpmAlgorithm.Sha256, 23, 31)));
        Assert.Equal(TpmRc.Value, e.Code.Base);
        Assert.Equal(1, e.Code.Parameter);
    }
}
