namespace Tabula.Tpm;

/// <summary>A loaded object: its handle (transient, 0x80xxxxxx), public area and name.</summary>
public sealed record TpmObject(uint Handle, TpmPublic Public, byte[] Name);

/// <summary>What TPM2_Create returns: the wrapped private part (TPM2B_PRIVATE contents, opaque) and the public area.</summary>
public sealed record TpmCreated(byte[] Private, TpmPublic Public);

public sealed partial class Tpm2
{
    /// <summary>
    /// TPM2_CreatePrimary in <paramref name="hierarchy"/> (TPM_RH_ENDORSEMENT for an EK, TPM_RH_OWNER for an SRK)
    /// from <paramref name="template"/>, authorized by the hierarchy's password (empty unless someone set one).
    /// The same template gives the same key for as long as the hierarchy's seed lives. Flush the handle when done.
    /// </summary>
    public TpmObject CreatePrimary(uint hierarchy, TpmPublic template, ReadOnlySpan<byte> hierarchyAuth = default)
    {
        byte[] auth = hierarchyAuth.ToArray();
        byte[] parameters = Execute(TpmCommandCode.CreatePrimary, 1, 1, (ref TpmWriter w) =>
        {
            w.WriteUInt32(hierarchy);
            WritePasswordSessions(ref w, auth);
            WriteCreateParameters(ref w, template);
        }, out uint handle);
        var (pub, name) = ParseCreatePrimary(parameters);
        return new TpmObject(handle, pub, name);
    }

    /// <summary>
    /// TPM2_Create under <paramref name="parent"/> (a storage key whose USER role takes a password, e.g. the SRK)
    /// from <paramref name="template"/>: the new key's private part wrapped by the parent, and its public area.
    /// </summary>
    public TpmCreated Create(uint parent, TpmPublic template, ReadOnlySpan<byte> parentAuth = default)
    {
        byte[] auth = parentAuth.ToArray();
        byte[] parameters = Execute(TpmCommandCode.Create, 1, (ref TpmWriter w) =>
        {
            w.WriteUInt32(parent);
            WritePasswordSessions(ref w, auth);
            WriteCreateParameters(ref w, template);
        });
        return ParseCreate(parameters);
    }

    /// <summary>TPM2_Load of a key <see cref="Create"/> made under <paramref name="parent"/>. Flush the handle when done.</summary>
    public TpmObject Load(uint parent, TpmCreated key, ReadOnlySpan<byte> parentAuth = default)
    {
        byte[] auth = parentAuth.ToArray();
        byte[] parameters = Execute(TpmCommandCode.Load, 1, 1, (ref TpmWriter w) =>
        {
            w.WriteUInt32(parent);
            WritePasswordSessions(ref w, auth);
            w.WriteTpm2B(key.Private);
            int start = w.BeginSized16();
            key.Public.WriteTo(ref w);
            w.EndSized16(start);
        }, out uint handle);
        byte[] name = ParseLoad(parameters);
        if (!name.AsSpan().SequenceEqual(key.Public.Name))
            throw new TpmFormatException(TpmFormatError.InvalidValue, "TPM2_Load.name (not the name of the public area loaded)");
        return new TpmObject(handle, key.Public, name);
    }

    /// <summary>TPM2_ReadPublic: the public area and name of a loaded or persistent object.</summary>
    public TpmObject ReadPublic(uint handle)
    {
        byte[] parameters = Execute(TpmCommandCode.ReadPublic, 0, (ref TpmWriter w) => w.WriteUInt32(handle));
        var (pub, name, _) = ParseReadPublic(parameters);
        return new TpmObject(handle, pub, name);
    }

    /// <summary>TPM2_FlushContext: unloads a transient object or ends a session.</summary>
    public void FlushContext(uint handle) =>
        Execute(TpmCommandCode.FlushContext, 0, (ref TpmWriter w) => w.WriteUInt32(handle));

    /// <summary>inSensitive (empty authValue and data), inPublic, outsideInfo (empty), creationPCR (none).</summary>
    static void WriteCreateParameters(ref TpmWriter w, TpmPublic template)
    {
        w.WriteUInt16(4);
        w.WriteTpm2B([]);
        w.WriteTpm2B([]);
        int start = w.BeginSized16();
        template.WriteTo(ref w);
        w.EndSized16(start);
        w.WriteTpm2B([]);
        w.WriteUInt32(0);
    }

    /// <summary>Reads creationData, creationHash and creationTicket, which we do not use, checking their frames.</summary>
    static void SkipCreation(ref TpmReader r)
    {
        r.ReadTpm2B(TpmLimits.MaxTpm2BBytes, "TPM2B_CREATION_DATA");
        r.ReadTpm2B(TpmLimits.MaxDigestBytes, "TPM2B_DIGEST creationHash");
        r.ReadUInt16("TPMT_TK_CREATION.tag");
        r.ReadUInt32("TPMT_TK_CREATION.hierarchy");
        r.ReadTpm2B(TpmLimits.MaxDigestBytes, "TPMT_TK_CREATION.digest");
    }

    static byte[] ReadName(ref TpmReader r, string what)
    {
        byte[] name = r.ReadTpm2B(TpmLimits.MaxNameBytes, what).ToArray();
        if (name.Length < 2)
            TpmFormatException.Throw(TpmFormatError.Truncated, what);
        return name;
    }

    /// <summary>Parses TPM2_CreatePrimary's response parameters; the name must be the public area's.</summary>
    internal static (TpmPublic Public, byte[] Name) ParseCreatePrimary(ReadOnlySpan<byte> parameters)
    {
        var r = new TpmReader(parameters);
        var pub = TpmPublic.ReadSized(ref r);
        SkipCreation(ref r);
        byte[] name = ReadName(ref r, "TPM2_CreatePrimary.name");
        r.ExpectEnd("TPM2_CreatePrimary response");
        if (!name.AsSpan().SequenceEqual(pub.Name))
            TpmFormatException.Throw(TpmFormatError.InvalidValue, "TPM2_CreatePrimary.name (not the name of outPublic)");
        return (pub, name);
    }

    /// <summary>Parses TPM2_Create's response parameters.</summary>
    internal static TpmCreated ParseCreate(ReadOnlySpan<byte> parameters)
    {
        var r = new TpmReader(parameters);
        byte[] priv = r.ReadTpm2B(TpmLimits.MaxTpm2BBytes, "TPM2B_PRIVATE").ToArray();
        var pub = TpmPublic.ReadSized(ref r);
        SkipCreation(ref r);
        r.ExpectEnd("TPM2_Create response");
        return new TpmCreated(priv, pub);
    }

    /// <summary>Parses TPM2_Load's response parameters: the name.</summary>
    internal static byte[] ParseLoad(ReadOnlySpan<byte> parameters)
    {
        var r = new TpmReader(parameters);
        byte[] name = ReadName(ref r, "TPM2_Load.name");
        r.ExpectEnd("TPM2_Load response");
        return name;
    }

    /// <summary>Parses TPM2_ReadPublic's response parameters; the name must be the public area's.</summary>
    internal static (TpmPublic Public, byte[] Name, byte[] QualifiedName) ParseReadPublic(ReadOnlySpan<byte> parameters)
    {
        var r = new TpmReader(parameters);
        var pub = TpmPublic.ReadSized(ref r);
        byte[] name = ReadName(ref r, "TPM2_ReadPublic.name");
        byte[] qualified = ReadName(ref r, "TPM2_ReadPublic.qualifiedName");
        r.ExpectEnd("TPM2_ReadPublic response");
        if (!name.AsSpan().SequenceEqual(pub.Name))
            TpmFormatException.Throw(TpmFormatError.InvalidValue, "TPM2_ReadPublic.name (not the name of outPublic)");
        return (pub, name, qualified);
    }
}
