namespace Tabula.Tpm;

/// <summary>TPMT_HA: a digest with its algorithm, as PCR_Extend takes them.</summary>
public sealed record TaggedDigest(TpmAlgorithm Algorithm, byte[] Digest);

/// <summary>
/// What one TPM2_PCR_Read answered: the PCR update counter, the PCRs it actually read (a TPM reads at most 8 per
/// call and says which), and their values in selection order (bank by bank, PCR index ascending).
/// </summary>
public sealed record PcrReadResponse(uint UpdateCounter, IReadOnlyList<PcrSelection> Read, IReadOnlyList<byte[]> Digests);

/// <summary>PCR values of one bank, read consistently (under one update counter).</summary>
public sealed record PcrValues(TpmAlgorithm Bank, uint UpdateCounter, IReadOnlyDictionary<int, byte[]> Values)
{
    /// <summary>The value of PCR <paramref name="pcr"/>.</summary>
    public byte[] this[int pcr] => Values[pcr];
}

public sealed partial class Tpm2
{
    /// <summary>
    /// TPM2_PCR_Extend: extends PCR <paramref name="pcr"/> in each bank given (TPML_DIGEST_VALUES), authorized by
    /// an empty password (PCRs 0–23 have an empty authValue). Banks not given are left alone.
    /// </summary>
    public void PcrExtend(int pcr, params ReadOnlySpan<TaggedDigest> digests)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pcr);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(pcr, TpmLimits.PcrCount);
        if (digests.IsEmpty)
            throw new ArgumentException("at least one digest", nameof(digests));
        foreach (var d in digests)
            if (TpmHash.DigestSize(d.Algorithm) is var size && (size == 0 || d.Digest.Length != size))
                throw new ArgumentException($"a {d.Algorithm} digest is {size} bytes, not {d.Digest.Length}", nameof(digests));
        var list = digests.ToArray();
        Execute(TpmCommandCode.PcrExtend, 1, (ref TpmWriter w) =>
        {
            w.WriteUInt32(TpmHandles.FirstPcr + (uint)pcr);
            WritePasswordSessions(ref w, EmptyPassword);
            w.WriteUInt32((uint)list.Length);
            foreach (var d in list)
            {
                w.WriteUInt16((ushort)d.Algorithm);
                w.WriteBytes(d.Digest);
            }
        });
    }

    /// <summary>TPM2_PCR_Extend of one SHA-256 digest into PCR <paramref name="pcr"/>.</summary>
    public void PcrExtendSha256(int pcr, ReadOnlySpan<byte> sha256) =>
        PcrExtend(pcr, new TaggedDigest(TpmAlgorithm.Sha256, sha256.ToArray()));

    /// <summary>One TPM2_PCR_Read of <paramref name="selection"/>: the TPM may read fewer PCRs than asked.</summary>
    public PcrReadResponse PcrReadOnce(params ReadOnlySpan<PcrSelection> selection)
    {
        var list = selection.ToArray();
        byte[] parameters = Execute(TpmCommandCode.PcrRead, 0, (ref TpmWriter w) => PcrSelection.WriteList(ref w, list));
        return ParsePcrRead(parameters);
    }

    /// <summary>
    /// Reads <paramref name="pcrs"/> of <paramref name="bank"/> with as many TPM2_PCR_Read as it takes, all under
    /// the same update counter (starts over, up to 3 times, when a PCR changed in between).
    /// </summary>
    public PcrValues PcrRead(TpmAlgorithm bank, params ReadOnlySpan<int> pcrs)
    {
        var wanted = PcrSelection.Of(bank, pcrs);
        int digestSize = TpmHash.DigestSize(bank);
        if (digestSize == 0)
            throw new ArgumentException($"{bank} is not a PCR bank algorithm", nameof(bank));
        for (int pass = 0; pass < 3; pass++)
        {
            var values = new SortedDictionary<int, byte[]>();
            uint? counter = null;
            uint remaining = wanted.Mask;
            bool changed = false;
            while (remaining != 0)
            {
                var answer = PcrReadOnce(new PcrSelection(bank, remaining));
                if (counter is { } c && c != answer.UpdateCounter)
                {
                    changed = true;
                    break;
                }
                counter = answer.UpdateCounter;
                uint read = 0;
                int next = 0;
                foreach (var s in answer.Read)
                {
                    if (s.Bank != bank || (s.Mask & ~remaining) != 0)
                        throw new TpmFormatException(TpmFormatError.InvalidValue, "TPM2_PCR_Read.pcrSelectionOut (PCRs not asked for)");
                    foreach (int i in s.Indexes)
                    {
                        byte[] digest = answer.Digests[next++];
                        if (digest.Length != digestSize)
                            throw new TpmFormatException(TpmFormatError.SizeMismatch, "TPM2_PCR_Read.pcrValues digest");
                        values[i] = digest;
                    }
                    read |= s.Mask;
                }
                if (read == 0)
                    break; // the bank is not allocated, or the PCRs do not exist: report what we have
                remaining &= ~read;
            }
            if (!changed)
                return new PcrValues(bank, counter ?? 0, values);
        }
        throw new TpmTransportException("TPM2_PCR_Read: the PCRs kept changing while they were read");
    }

    /// <summary>Parses TPM2_PCR_Read's response parameters (pcrUpdateCounter, pcrSelectionOut, pcrValues).</summary>
    internal static PcrReadResponse ParsePcrRead(ReadOnlySpan<byte> parameters)
    {
        var r = new TpmReader(parameters);
        uint counter = r.ReadUInt32("TPM2_PCR_Read.pcrUpdateCounter");
        var selections = PcrSelection.ReadList(ref r);
        int count = r.ReadCount(TpmLimits.MaxDigests, 2, "TPML_DIGEST.count");
        var digests = new byte[count][];
        for (int i = 0; i < count; i++)
            digests[i] = r.ReadTpm2B(TpmLimits.MaxDigestBytes, "TPML_DIGEST.digests").ToArray();
        r.ExpectEnd("TPM2_PCR_Read response");
        int selected = 0;
        foreach (var s in selections)
            selected += s.Count;
        if (selected != count)
            TpmFormatException.Throw(TpmFormatError.SizeMismatch, "TPM2_PCR_Read.pcrValues (count differs from pcrSelectionOut)");
        return new PcrReadResponse(counter, selections, digests);
    }
}
