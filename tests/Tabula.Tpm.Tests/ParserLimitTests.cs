using Tabula.Testing;
using Tabula.Tpm;

namespace Tabula.Tpm.Tests;

/// <summary>Every response parser, fed real swtpm responses cut short, grown and with hostile counts.</summary>
public sealed class ParserLimitTests
{
    static List<(byte[] Command, byte[] Response)> RealPcrExchanges()
    {
        using var swtpm = Swtpm.Start();
        var recording = new RecordingTransport(swtpm.Connect());
        using var tpm = new Tpm2(recording);
        tpm.PcrExtendSha256(12, new byte[32]);
        tpm.PcrRead(TpmAlgorithm.Sha256, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
        return recording.Exchanges;
    }

    static void ParseAny(byte[] command, ReadOnlySpan<byte> response)
    {
        var cc = (TpmCommandCode)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(command.AsSpan(6));
        switch (cc)
        {
            case TpmCommandCode.PcrRead:
                Tpm2.ParsePcrRead(TpmResponse.Parse(response, cc, 0, 0).Parameters);
                break;
            case TpmCommandCode.PcrExtend:
                if (!TpmResponse.Parse(response, cc, 0, 1).Parameters.IsEmpty)
                    throw new TpmFormatException(TpmFormatError.TrailingBytes, "PCR_Extend");
                break;
            default:
                throw new InvalidOperationException(cc.ToString());
        }
    }

    [ToolsFact("swtpm")]
    public void Truncated_responses_are_format_errors()
    {
        foreach (var (command, response) in RealPcrExchanges())
        {
            ParseAny(command, response);
            for (int length = 0; length < response.Length; length++)
            {
                var cut = response[..length];
                Assert.Throws<TpmFormatException>(() => ParseAny(command, cut));
                // The same bytes with a header that claims what is there: the inner parser must catch it.
                if (length >= TpmLimits.HeaderBytes)
                {
                    System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(cut.AsSpan(2), (uint)length);
                    Assert.Throws<TpmFormatException>(() => ParseAny(command, cut));
                }
            }
        }
    }

    [ToolsFact("swtpm")]
    public void Oversized_responses_are_format_errors()
    {
        foreach (var (command, response) in RealPcrExchanges())
        {
            byte[] longer = [.. response, 0];
            var e = Assert.Throws<TpmFormatException>(() => ParseAny(command, longer));
            Assert.Equal(TpmFormatError.SizeMismatch, e.Error);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(longer.AsSpan(2), (uint)longer.Length);
            e = Assert.Throws<TpmFormatException>(() => ParseAny(command, longer));
            Assert.Equal(TpmFormatError.TrailingBytes, e.Error);
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
