namespace Tabula.Tpm;

/// <summary>TPMS_NV_PUBLIC (part 2, 13.5): an NV index's definition.</summary>
public sealed record NvPublic(uint Index, TpmAlgorithm NameAlg, uint Attributes, byte[] AuthPolicy, int DataSize)
{
    /// <summary>TPMA_NV_AUTHREAD: the index's own authValue may authorize reads.</summary>
    public bool AuthRead => (Attributes & 0x00040000) != 0;

    /// <summary>TPMA_NV_OWNERREAD: the owner hierarchy may authorize reads.</summary>
    public bool OwnerRead => (Attributes & 0x00020000) != 0;

    /// <summary>TPMA_NV_WRITTEN: the index holds data.</summary>
    public bool Written => (Attributes & 0x20000000) != 0;
}

public sealed partial class Tpm2
{
    /// <summary>TPM2_NV_ReadPublic: the index's definition (size, attributes).</summary>
    public NvPublic NvReadPublic(uint index)
    {
        byte[] parameters = Execute(TpmCommandCode.NvReadPublic, 0, (ref TpmWriter w) => w.WriteUInt32(index));
        return ParseNvReadPublic(parameters).Public;
    }

    /// <summary>
    /// Reads an NV index whole (at most <paramref name="maxBytes"/>, <see cref="TpmLimits.MaxNvIndexBytes"/> by
    /// default) in <see cref="TpmLimits.NvReadChunkBytes"/> pieces, authorized by the index itself when it allows
    /// (AUTHREAD) or else by the owner, both with the empty password. This is how the EK certificate is read.
    /// </summary>
    public byte[] NvRead(uint index, int maxBytes = TpmLimits.MaxNvIndexBytes)
    {
        var pub = NvReadPublic(index);
        if (pub.DataSize > maxBytes)
            throw new TpmFormatException(TpmFormatError.TooLarge, $"NV index 0x{index:x8} ({pub.DataSize} bytes)");
        uint authHandle = pub.AuthRead ? index : TpmHandles.Owner;
        var data = new byte[pub.DataSize];
        for (int offset = 0; offset < data.Length;)
        {
            int size = Math.Min(TpmLimits.NvReadChunkBytes, data.Length - offset);
            int at = offset;
            byte[] parameters = Execute(TpmCommandCode.NvRead, 1, (ref TpmWriter w) =>
            {
                w.WriteUInt32(authHandle);
                w.WriteUInt32(index);
                WritePasswordSessions(ref w, EmptyPassword);
                w.WriteUInt16((ushort)size);
                w.WriteUInt16((ushort)at);
            });
            byte[] chunk = ParseNvRead(parameters);
            if (chunk.Length != size)
                throw new TpmFormatException(TpmFormatError.SizeMismatch, "TPM2_NV_Read.data (not the size asked for)");
            chunk.CopyTo(data, offset);
            offset += size;
        }
        return data;
    }

    /// <summary>Reads the EK certificate (DER) the manufacturer stored for <paramref name="ek"/>'s type.</summary>
    public byte[] ReadEkCertificate(TpmAlgorithm ek = TpmAlgorithm.Rsa) =>
        NvRead(ek == TpmAlgorithm.Ecc ? TpmTemplates.EccEkCertificateIndex : TpmTemplates.RsaEkCertificateIndex);

    /// <summary>Parses TPM2_NV_ReadPublic's response parameters.</summary>
    internal static (NvPublic Public, byte[] Name) ParseNvReadPublic(ReadOnlySpan<byte> parameters)
    {
        var r = new TpmReader(parameters);
        var inner = r.ReadSized(TpmLimits.MaxTpm2BBytes, "TPM2B_NV_PUBLIC");
        uint index = inner.ReadUInt32("TPMS_NV_PUBLIC.nvIndex");
        var nameAlg = (TpmAlgorithm)inner.ReadUInt16("TPMS_NV_PUBLIC.nameAlg");
        uint attributes = inner.ReadUInt32("TPMS_NV_PUBLIC.attributes");
        byte[] policy = inner.ReadTpm2B(TpmLimits.MaxDigestBytes, "TPMS_NV_PUBLIC.authPolicy").ToArray();
        int size = inner.ReadUInt16("TPMS_NV_PUBLIC.dataSize");
        inner.ExpectEnd("TPMS_NV_PUBLIC");
        byte[] name = ReadName(ref r, "TPM2_NV_ReadPublic.nvName");
        r.ExpectEnd("TPM2_NV_ReadPublic response");
        return (new NvPublic(index, nameAlg, attributes, policy, size), name);
    }

    /// <summary>Parses TPM2_NV_Read's response parameters: the data.</summary>
    internal static byte[] ParseNvRead(ReadOnlySpan<byte> parameters)
    {
        var r = new TpmReader(parameters);
        byte[] data = r.ReadTpm2B(TpmLimits.MaxTpm2BBytes, "TPM2B_MAX_NV_BUFFER").ToArray();
        r.ExpectEnd("TPM2_NV_Read response");
        return data;
    }
}
