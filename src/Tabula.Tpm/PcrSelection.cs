using System.Numerics;

namespace Tabula.Tpm;

/// <summary>
/// TPMS_PCR_SELECTION: a set of PCRs (0–31) in one bank. Written with sizeofSelect 3 (24 PCRs, the PC Client
/// profile) unless it selects PCRs above 23.
/// </summary>
public readonly record struct PcrSelection(TpmAlgorithm Bank, uint Mask)
{
    /// <summary>A selection of <paramref name="pcrs"/> in <paramref name="bank"/>.</summary>
    public static PcrSelection Of(TpmAlgorithm bank, params ReadOnlySpan<int> pcrs)
    {
        uint mask = 0;
        foreach (int pcr in pcrs)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(pcr);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(pcr, 8 * TpmLimits.MaxPcrSelectBytes);
            mask |= 1u << pcr;
        }
        return new PcrSelection(bank, mask);
    }

    /// <summary>The selected PCR indexes, ascending.</summary>
    public IReadOnlyList<int> Indexes
    {
        get
        {
            var list = new List<int>(BitOperations.PopCount(Mask));
            for (int i = 0; i < 32; i++)
                if ((Mask & (1u << i)) != 0)
                    list.Add(i);
            return list;
        }
    }

    /// <summary>How many PCRs are selected.</summary>
    public int Count => BitOperations.PopCount(Mask);

    /// <summary>True when nothing is selected.</summary>
    public bool IsEmpty => Mask == 0;

    /// <summary>Writes TPMS_PCR_SELECTION.</summary>
    public void WriteTo(ref TpmWriter w)
    {
        int size = Mask > 0xFFFFFF ? 4 : 3;
        w.WriteUInt16((ushort)Bank);
        w.WriteByte((byte)size);
        for (int i = 0; i < size; i++)
            w.WriteByte((byte)(Mask >> (8 * i)));
    }

    /// <summary>Writes TPML_PCR_SELECTION with the given selections.</summary>
    public static void WriteList(ref TpmWriter w, params ReadOnlySpan<PcrSelection> selections)
    {
        w.WriteUInt32((uint)selections.Length);
        foreach (var s in selections)
            s.WriteTo(ref w);
    }

    /// <summary>Reads TPMS_PCR_SELECTION (sizeofSelect up to <see cref="TpmLimits.MaxPcrSelectBytes"/>).</summary>
    public static PcrSelection Read(ref TpmReader r)
    {
        var bank = (TpmAlgorithm)r.ReadUInt16("TPMS_PCR_SELECTION.hash");
        int size = r.ReadByte("TPMS_PCR_SELECTION.sizeofSelect");
        if (size > TpmLimits.MaxPcrSelectBytes)
            TpmFormatException.Throw(TpmFormatError.TooLarge, "TPMS_PCR_SELECTION.sizeofSelect");
        var bytes = r.ReadBytes(size, "TPMS_PCR_SELECTION.pcrSelect");
        uint mask = 0;
        for (int i = 0; i < size; i++)
            mask |= (uint)bytes[i] << (8 * i);
        return new PcrSelection(bank, mask);
    }

    /// <summary>Reads TPML_PCR_SELECTION.</summary>
    public static PcrSelection[] ReadList(ref TpmReader r)
    {
        int count = r.ReadCount(TpmLimits.MaxPcrBanks, 3, "TPML_PCR_SELECTION.count");
        var list = new PcrSelection[count];
        for (int i = 0; i < count; i++)
            list[i] = Read(ref r);
        return list;
    }
}
