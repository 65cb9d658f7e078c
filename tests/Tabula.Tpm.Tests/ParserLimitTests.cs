using System.Buffers.Binary;
using Tabula.Testing;
using Tabula.Tpm;

namespace Tabula.Tpm.Tests;

/// <summary>Every response parser, fed real swtpm responses cut short, grown and with hostile counts.</summary>
public sealed class ParserLimitTests(ManufacturedTpm made) : IClassFixture<ManufacturedTpm>
{
    /// <summary>One real exchange of every command the library sends, recorded from a manufactured swtpm.</summary>
    internal static List<(byte[] Command, byte[] Response)> RealExchanges(ManufacturedTpm made)
    {
        var recording = new RecordingTransport(made.Swtpm.Connect());
        using var tpm = new Tpm2(recording);
        tpm.Startup();
        tpm.PcrExtendSha256(12, new byte[32]);
        tpm.PcrRead(TpmAlgorithm.Sha256, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
        tpm.ReadEkCertificate();
        var ek = tpm.CreatePrimary(TpmHandles.Endorsement, TpmTemplates.EkRsa2048);
        var srk = tpm.CreatePrimary(TpmHandles.Owner, TpmTemplates.SrkRsa2048);
        foreach (var template in (TpmPublic[])[TpmTemplates.AkEccP256, TpmTemplates.AkRsa2048])
        {
            var ak = tpm.Load(srk.Handle, tpm.Create(srk.Handle, template));
            tpm.ReadPublic(ak.Handle);
            tpm.Quote(ak.Handle, new byte[32], PcrSelection.Of(TpmAlgorithm.Sha256, 12, 13, 14));
            if (template.Type == TpmAlgorithm.Rsa)
            {
                var (blob, secret) = KeyTests.ReadToolsCredential(MakeCredentialFile(made, ek.Public, ak.Name));
                tpm.ActivateCredential(ak.Handle, ek.Handle, blob, secret);
            }
            tpm.FlushContext(ak.Handle);
        }
        tpm.FlushContext(srk.Handle);
        tpm.FlushContext(ek.Handle);
        return recording.Exchanges;
    }

    static byte[] MakeCredentialFile(ManufacturedTpm made, TpmPublic ek, byte[] name)
    {
        string id = ManufacturedTpm.Nonce();
        string ekFile = made.Scratch($"pl-ek-{id}"), secret = made.Scratch($"pl-s-{id}"), output = made.Scratch($"pl-c-{id}");
        File.WriteAllBytes(ekFile, [(byte)(ek.Encoded.Length >> 8), (byte)ek.Encoded.Length, .. ek.Encoded]);
        File.WriteAllBytes(secret, new byte[16]);
        Prerequisites.Run("tpm2_makecredential", "-T", "none", "-u", ekFile, "-s", secret, "-n", Convert.ToHexStringLower(name), "-o", output);
        return File.ReadAllBytes(output);
    }

    static TpmCommandCode CommandOf(byte[] command) => (TpmCommandCode)BinaryPrimitives.ReadUInt32BigEndian(command.AsSpan(6));

    static bool IsError(byte[] response) => BinaryPrimitives.ReadUInt32BigEndian(response.AsSpan(6)) != 0;

    [ToolsFact("swtpm", "swtpm_setup", "swtpm_localca", "tpm2_makecredential")]
    public void Every_command_was_recorded()
    {
        var seen = RealExchanges(made).Select(e => CommandOf(e.Command)).ToHashSet();
        Assert.Equal(ResponseParsers.Commands.Order(), seen.Order());
    }

    [ToolsFact("swtpm", "swtpm_setup", "swtpm_localca", "tpm2_makecredential")]
    public void Truncated_responses_are_format_errors()
    {
        foreach (var (command, response) in RealExchanges(made).Where(e => !IsError(e.Response)))
        {
            var cc = CommandOf(command);
            ResponseParsers.Parse(cc, response);
            for (int length = 0; length < response.Length; length++)
            {
                byte[] cut = response[..length];
                Assert.Throws<TpmFormatException>(() => ResponseParsers.Parse(cc, cut));
                // The same bytes with a header that claims what is there: the inner parsers must catch it.
                if (length >= TpmLimits.HeaderBytes)
                {
                    BinaryPrimitives.WriteUInt32BigEndian(cut.AsSpan(2), (uint)length);
                    Assert.Throws<TpmFormatException>(() => ResponseParsers.Parse(cc, cut));
                }
            }
        }
    }

    [ToolsFact("swtpm", "swtpm_setup", "swtpm_localca", "tpm2_makecredential")]
    public void Oversized_responses_are_format_errors()
    {
        foreach (var (command, response) in RealExchanges(made).Where(e => !IsError(e.Response)))
        {
            var cc = CommandOf(command);
            byte[] longer = [.. response, 0];
            var e = Assert.Throws<TpmFormatException>(() => ResponseParsers.Parse(cc, longer));
            Assert.Equal(TpmFormatError.SizeMismatch, e.Error);
            BinaryPrimitives.WriteUInt32BigEndian(longer.AsSpan(2), (uint)longer.Length);
            e = Assert.Throws<TpmFormatException>(() => ResponseParsers.Parse(cc, longer));
            Assert.True(e.Error is TpmFormatError.TrailingBytes or TpmFormatError.Truncated, $"{cc}: {e.Message}");
        }
    }

    /// <summary>
    /// What a relay sends a verifier besides its event log, each parsed on its own as the controller and <c>relay attest</c>
    /// parse it (no response frame or TPM2B around it to catch a bad size first): the AK's TPMT_PUBLIC, the quote's
    /// TPMS_ATTEST and its TPMT_SIGNATURE, real ones from swtpm for an ECC and an RSA AK, cut at every length and grown by
    /// a byte.
    /// </summary>
    [ToolsFact("swtpm", "swtpm_setup", "swtpm_localca")]
    public void Evidence_structures_cut_short_or_grown_are_format_errors()
    {
        using var tpm = made.Swtpm.Open();
        var srk = tpm.CreatePrimary(TpmHandles.Owner, TpmTemplates.SrkRsa2048);
        try
        {
            foreach (var template in (TpmPublic[])[TpmTemplates.AkEccP256, TpmTemplates.AkRsa2048])
            {
                var ak = tpm.Load(srk.Handle, tpm.Create(srk.Handle, template));
                try
                {
                    var quote = tpm.Quote(ak.Handle, new byte[32], PcrSelection.Of(TpmAlgorithm.Sha256, 12, 13, 14));
                    var structures = new (string What, byte[] Bytes, Action<byte[]> Parse)[]
                    {
                        ("TPMT_PUBLIC", ak.Public.Encoded, b => TpmPublic.Parse(b)),
                        ("TPMS_ATTEST", quote.Attest, b => TpmAttest.ParseQuote(b)),
                        ("TPMT_SIGNATURE", quote.Signature.ToBytes(), b => TpmSignature.Parse(b)),
                    };
                    foreach (var (what, bytes, parse) in structures)
                    {
                        parse(bytes);
                        for (int length = 0; length < bytes.Length; length++)
                        {
                            var e = Assert.Throws<TpmFormatException>(() => parse(bytes[..length]));
                            Assert.True(e.Error is TpmFormatError.Truncated or TpmFormatError.SizeMismatch, $"{template.Type} {what} cut to {length}: {e.Message}");
                        }
                        Assert.Equal(TpmFormatError.TrailingBytes, Assert.Throws<TpmFormatException>(() => parse([.. bytes, 0])).Error);
                    }
                }
                finally
                {
                    tpm.FlushContext(ak.Handle);
                }
            }
        }
        finally
        {
            tpm.FlushContext(srk.Handle);
        }
    }

    /// <summary>Writes the recorded responses as fuzz seeds when TABULA_TPM_CORPUS names a directory.</summary>
    [ToolsFact("swtpm", "swtpm_setup", "swtpm_localca", "tpm2_makecredential")]
    public void Real_responses_can_be_written_as_a_fuzz_corpus()
    {
        string? dir = Environment.GetEnvironmentVariable("TABULA_TPM_CORPUS");
        var exchanges = RealExchanges(made);
        if (dir is null)
            return;
        Directory.CreateDirectory(dir);
        var counts = new Dictionary<TpmCommandCode, int>();
        foreach (var (command, response) in exchanges)
        {
            var cc = CommandOf(command);
            int n = counts[cc] = counts.GetValueOrDefault(cc) + 1;
            File.WriteAllBytes(Path.Combine(dir, $"{cc}{n}_good_swtpm"), [.. command.AsSpan(6, 4), .. response]);
        }
    }

    [Theory]
    [InlineData("00000001" + "00000011" + "000b03ffffff" + "00000000", TpmFormatError.TooLarge)] // 17 banks
    [InlineData("00000001" + "00000001" + "000b05ffffffffff" + "00000000", TpmFormatError.TooLarge)] // sizeofSelect 5
    [InlineData("00000001" + "00000001" + "000b03ff0000" + "00000009", TpmFormatError.TooLarge)] // 9 digests
    [InlineData("00000001" + "00000001" + "000b03ff0000" + "00000008", TpmFormatError.Truncated)] // 8 digests promised, none there
    [InlineData("00000001" + "00000001" + "000b0301000000000001" + "0041" , TpmFormatError.TooLarge)] // digest of 65 bytes
    [InlineData("00000001" + "00000001" + "000b0303000000000001" + "000100", TpmFormatError.SizeMismatch)] // 2 selected, 1 digest
    [InlineData("00000001" + "ffffffff", TpmFormatError.TooLarge)]
    public void Hostile_pcr_read_parameters_are_refused(string hex, TpmFormatError expected)
    {
        var e = Assert.Throws<TpmFormatException>(() => Tpm2.ParsePcrRead(Convert.FromHexString(hex)));
        Assert.Equal(expected, e.Error);
    }

    [Fact]
    public void An_error_response_with_a_body_or_a_sessions_tag_is_malformed()
    {
        Assert.Equal(TpmFormatError.TrailingBytes, Assert.Throws<TpmFormatException>(() =>
            TpmResponse.Parse(Convert.FromHexString("80010000000b0000010000"), TpmCommandCode.PcrRead, 0, 0)).Error);
        Assert.Equal(TpmFormatError.UnexpectedTag, Assert.Throws<TpmFormatException>(() =>
            TpmResponse.Parse(Convert.FromHexString("80020000000a00000100"), TpmCommandCode.PcrRead, 0, 0)).Error);
        var e = Assert.Throws<TpmErrorException>(() =>
            TpmResponse.Parse(Convert.FromHexString("80010000000a00000100"), TpmCommandCode.PcrRead, 0, 0));
        Assert.Equal(TpmRc.Initialize, e.Code.Base);
    }

    [Fact]
    public void A_session_area_with_a_missing_session_is_truncated()
    {
        // PCR_Extend success with parameterSize 0 and no authorization.
        var e = Assert.Throws<TpmFormatException>(() =>
            TpmResponse.Parse(Convert.FromHexString("8002000000 0e00000000 00000000".Replace(" ", "")), TpmCommandCode.PcrExtend, 0, 1));
        Assert.Equal(TpmFormatError.Truncated, e.Error);
    }
}
