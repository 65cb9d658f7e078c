using System.Buffers.Binary;
using Tabula.Tpm;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// A TPM's response to one of the commands Tabula.Tpm sends (ResponseParsers: the frame, then the command's own
/// parameter parser, exactly what <see cref="Tpm2"/> runs on what /dev/tpmrm0 or swtpm answers). A response cannot be
/// read without knowing the command it answers (the handle and session areas and the parameters depend on it), so the
/// input is the command code (4 bytes, big-endian TPM_CC, as in the command's header) followed by the response; a code
/// the library does not send is refused. Refusals are <see cref="TpmFormatException"/> and <see cref="TpmErrorException"/>
/// (a well-formed error response); an accepted response is within <see cref="TpmLimits.MaxMessageBytes"/>, and what it
/// holds re-reads the same: public areas re-encode to their bytes, quotes' attestation re-parses, signatures round-trip.
/// </summary>
public static class TpmResponseTarget
{
    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        if (input.Length < 4)
            return false;
        var command = (TpmCommandCode)BinaryPrimitives.ReadUInt32BigEndian(input);
        // Asked of Tabula.Tpm (instrumented), not of an array here: afl-fuzz aborts on a seed that reaches no instrumented code.
        try { ResponseParsers.Shape(command); }
        catch (ArgumentOutOfRangeException) { return false; }
        var response = input[4..];
        object? parsed;
        try { parsed = ResponseParsers.Parse(command, response); }
        catch (TpmException e) when (e is TpmFormatException or TpmErrorException) { return false; }

        FuzzFinding.Check(response.Length <= TpmLimits.MaxMessageBytes, $"TPM2_{command}: accepted a response over the message limit", input);
        switch (parsed)
        {
            case (TpmPublic pub, byte[] name):   // CreatePrimary
                CheckPublic(pub, input);
                FuzzFinding.Check(name.AsSpan().SequenceEqual(pub.Name), "CreatePrimary: the name is not the public area's", input);
                break;
            case (TpmPublic pub, byte[] name, byte[] qualified):   // ReadPublic
                CheckPublic(pub, input);
                FuzzFinding.Check(name.AsSpan().SequenceEqual(pub.Name) && qualified.Length is >= 2 and <= TpmLimits.MaxNameBytes,
                    "ReadPublic: the names are not the public area's or out of bounds", input);
                break;
            case TpmCreated created:
                CheckPublic(created.Public, input);
                break;
            case TpmQuote quote:
                var again = TpmAttest.ParseQuote(quote.Attest);
                FuzzFinding.Check(again.ExtraData.AsSpan().SequenceEqual(quote.Parsed.ExtraData) && again.PcrDigest.AsSpan().SequenceEqual(quote.Parsed.PcrDigest)
                    && again.PcrSelection.SequenceEqual(quote.Parsed.PcrSelection), "Quote: the attestation re-parses to other values", input);
                var signature = TpmSignature.Parse(quote.Signature.ToBytes());
                FuzzFinding.Check(signature.Algorithm == quote.Signature.Algorithm && signature.Hash == quote.Signature.Hash
                    && signature.Rsa.AsSpan().SequenceEqual(quote.Signature.Rsa) && signature.EcdsaR.AsSpan().SequenceEqual(quote.Signature.EcdsaR)
                    && signature.EcdsaS.AsSpan().SequenceEqual(quote.Signature.EcdsaS), "Quote: the signature does not round-trip", input);
                break;
            case PcrReadResponse read:
                FuzzFinding.Check(read.Read.Sum(s => s.Count) == read.Digests.Count && read.Digests.All(d => d.Length <= TpmLimits.MaxDigestBytes),
                    "PCR_Read: the values do not match the selection", input);
                break;
            case byte[] bytes:   // NV_Read data, Load's name, a session nonce, ActivateCredential's secret
                FuzzFinding.Check(bytes.Length <= TpmLimits.MaxTpm2BBytes, $"TPM2_{command}: a value over the TPM2B limit", input);
                break;
        }
        return true;
    }

    /// <summary>A parsed public area written again (a copy without the parsed bytes) is the same bytes, and parses again.</summary>
    static void CheckPublic(TpmPublic pub, ReadOnlySpan<byte> input)
    {
        byte[] written;
        try { written = (pub with { }).Encoded; }
        catch (ArgumentException e) { FuzzFinding.Fail($"TPMT_PUBLIC: an accepted public area cannot be written ({e.Message})", input); return; }
        FuzzFinding.Check(written.AsSpan().SequenceEqual(pub.Encoded), "TPMT_PUBLIC: written again it is other bytes", input);
        FuzzFinding.Check(TpmPublic.Parse(written).Name.AsSpan().SequenceEqual(pub.Name), "TPMT_PUBLIC: re-parsed it has another name", input);
    }
}
