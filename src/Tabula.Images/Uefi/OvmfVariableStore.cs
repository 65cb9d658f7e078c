using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Tabula.Images.Uefi;

/// <summary>The time of an authenticated variable (EFI_TIME, UEFI 2.10 §8.3; only the date and time fields are used).</summary>
public readonly record struct EfiTime(ushort Year, byte Month, byte Day, byte Hour, byte Minute, byte Second)
{
    /// <summary>No time (all zero): what a variable without time-based authentication carries.</summary>
    public static readonly EfiTime None = default;

    /// <summary>The time of <paramref name="at"/> in UTC, to the second.</summary>
    public static EfiTime From(DateTimeOffset at)
    {
        var u = at.UtcDateTime;
        return new EfiTime((ushort)u.Year, (byte)u.Month, (byte)u.Day, (byte)u.Hour, (byte)u.Minute, (byte)u.Second);
    }

    internal void Write(Span<byte> destination)
    {
        destination[..16].Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(destination, Year);
        destination[2] = Month;
        destination[3] = Day;
        destination[4] = Hour;
        destination[5] = Minute;
        destination[6] = Second;
    }

    internal static EfiTime Read(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadUInt16LittleEndian(source), source[2], source[3], source[4], source[5], source[6]);
}

/// <summary>One variable in a firmware variable store.</summary>
/// <param name="Name">Its name (UTF-16 in the store).</param>
/// <param name="Vendor">Its vendor GUID.</param>
/// <param name="Attributes">EFI_VARIABLE_* bits (NON_VOLATILE 0x1, BOOTSERVICE_ACCESS 0x2, RUNTIME_ACCESS 0x4, TIME_BASED_AUTHENTICATED_WRITE_ACCESS 0x20).</param>
/// <param name="Data">Its value (for authenticated variables: without the EFI_VARIABLE_AUTHENTICATION_2 descriptor, as the firmware stores it).</param>
public sealed record FirmwareVariable(string Name, Guid Vendor, uint Attributes, byte[] Data)
{
    /// <summary>For time-based authenticated variables: the time of the last authenticated write.</summary>
    public EfiTime TimeStamp { get; init; } = EfiTime.None;

    /// <summary>AUTHENTICATED_VARIABLE_HEADER.MonotonicCount (unused by time-based variables).</summary>
    public ulong MonotonicCount { get; init; }

    /// <summary>AUTHENTICATED_VARIABLE_HEADER.PubKeyIndex (unused by time-based variables).</summary>
    public uint PubKeyIndex { get; init; }

    /// <summary>NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS: an ordinary variable the OS can read (STHostConfig).</summary>
    public const uint NonVolatileRuntime = 0x1 | 0x2 | 0x4;

    /// <summary><see cref="NonVolatileRuntime"/> | TIME_BASED_AUTHENTICATED_WRITE_ACCESS: PK, KEK, db, dbx.</summary>
    public const uint TimeBasedAuthenticated = NonVolatileRuntime | 0x20;
}

/// <summary>
/// The one reader and writer of OVMF's variable store (the VARS.fd QEMU gives the firmware as its second flash
/// device), from EDK2's headers (MdePkg PiFirmwareVolume.h, MdeModulePkg VariableFormat.h):
/// <list type="number">
/// <item>EFI_FIRMWARE_VOLUME_HEADER: zero vector, file system GUID gEfiSystemNvDataFvGuid, length, "_FVH", attributes,
/// header length, 16-bit checksum (the header sums to zero), block map;</item>
/// <item>VARIABLE_STORE_HEADER right after it: gEfiAuthenticatedVariableGuid (OVMF always builds the authenticated
/// format, with or without Secure Boot), size, format 0x5A (formatted), state 0xFE (healthy);</item>
/// <item>variables, each 4-byte aligned: AUTHENTICATED_VARIABLE_HEADER (60 bytes, packed: start id 0x55AA, state,
/// attributes, monotonic count, EFI_TIME, public key index, name size, data size, vendor GUID), the UTF-16 name with
/// its NUL, the data; erased flash (0xFF) after the last.</item>
/// </list>
/// Writing rewrites the variable area compactly: live variables (state VAR_ADDED) in their order, a changed one in
/// place, new ones at the end, deleted ones dropped (what the firmware's own reclaim does), the rest erased. The
/// fault-tolerant-write blocks after the store are kept byte for byte. The firmware itself is the cross-check: it
/// reads what this writes (the UEFI E2E test), and this reads Debian's OVMF_VARS_4M.ms.fd, written by another tool,
/// back to the same bytes.
/// </summary>
public sealed class OvmfVariableStore
{
    /// <summary>gEfiSystemNvDataFvGuid: the FV holding the variable store.</summary>
    public static readonly Guid SystemNvDataFv = new("fff12b8d-7696-4c8b-a985-2747075b4f50");

    /// <summary>gEfiAuthenticatedVariableGuid: a store of AUTHENTICATED_VARIABLE_HEADERs.</summary>
    public static readonly Guid AuthenticatedVariableStore = new("aaf32c78-947b-439a-a180-2e144ec37792");

    /// <summary>gEfiVariableGuid: the older store without authentication fields (not written by OVMF; refused).</summary>
    public static readonly Guid PlainVariableStore = new("ddcf3616-3275-4164-98b6-fe85707ffe7d");

    const int FvHeaderMinimum = 0x38;
    const int StoreHeaderSize = 28;
    const int VariableHeaderSize = 60;
    const ushort StartId = 0x55aa;
    const byte StoreFormatted = 0x5a;
    const byte StoreHealthy = 0xfe;
    const byte VarAdded = 0x3f;
    const byte VarInDeletedTransition = 0xfe;
    const byte VarHeaderValidOnly = 0x7f;

    readonly byte[] image;
    readonly int storeStart;
    readonly int storeSize;
    readonly List<FirmwareVariable> variables;

    OvmfVariableStore(byte[] image, int storeStart, int storeSize, List<FirmwareVariable> variables)
    {
        this.image = image;
        this.storeStart = storeStart;
        this.storeSize = storeSize;
        this.variables = variables;
    }

    /// <summary>The live variables, in store order.</summary>
    public IReadOnlyList<FirmwareVariable> Variables => variables;

    /// <summary>Bytes left for more variables.</summary>
    public int FreeBytes => storeSize - StoreHeaderSize - Layout(variables);

    /// <summary>Parses a VARS.fd image (copied: the caller's array is not changed).</summary>
    public static OvmfVariableStore Parse(ReadOnlySpan<byte> fd)
    {
        byte[] image = fd.ToArray();
        if (image.Length < FvHeaderMinimum + StoreHeaderSize)
            Fail($"{image.Length} bytes is too short for a firmware volume");
        var span = image.AsSpan();
        if (!span[..16].SequenceEqual(new byte[16]) || new Guid(span.Slice(16, 16)) != SystemNvDataFv)
            Fail("not an NV data firmware volume (file system GUID is not gEfiSystemNvDataFvGuid)");
        ulong fvLength = BinaryPrimitives.ReadUInt64LittleEndian(span[32..]);
        if (BinaryPrimitives.ReadUInt32LittleEndian(span[40..]) != 0x4856465f)
            Fail("no \"_FVH\" signature");
        ushort headerLength = BinaryPrimitives.ReadUInt16LittleEndian(span[48..]);
        if (fvLength != (ulong)image.Length)
            Fail($"firmware volume length 0x{fvLength:x} is not the file's 0x{image.Length:x}");
        if (headerLength < FvHeaderMinimum || headerLength % 8 != 0 || headerLength + StoreHeaderSize > image.Length)
            Fail($"firmware volume header length 0x{headerLength:x} is invalid");
        ushort sum = 0;
        for (int i = 0; i < headerLength; i += 2)
            sum += BinaryPrimitives.ReadUInt16LittleEndian(span[i..]);
        if (sum != 0)
            Fail("firmware volume header checksum is wrong (corrupted)");

        int store = headerLength;
        var storeGuid = new Guid(span.Slice(store, 16));
        if (storeGuid == PlainVariableStore)
            Fail("the variable store has no authentication fields (gEfiVariableGuid); OVMF's is authenticated");
        if (storeGuid != AuthenticatedVariableStore)
            Fail($"variable store signature {storeGuid} is not gEfiAuthenticatedVariableGuid");
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(span[(store + 16)..]);
        if (size < StoreHeaderSize || (ulong)store + size > (ulong)image.Length)
            Fail($"variable store size 0x{size:x} runs past the volume");
        if (span[store + 20] != StoreFormatted || span[store + 21] != StoreHealthy)
            Fail($"variable store is not formatted and healthy (format 0x{span[store + 20]:x2}, state 0x{span[store + 21]:x2})");

        var list = new List<FirmwareVariable>();
        int end = store + (int)size;
        int offset = Align4(store + StoreHeaderSize);
        while (offset + VariableHeaderSize <= end && BinaryPrimitives.ReadUInt16LittleEndian(span[offset..]) == StartId)
        {
            var h = span.Slice(offset, VariableHeaderSize);
            byte state = h[2];
            uint attributes = BinaryPrimitives.ReadUInt32LittleEndian(h[4..]);
            ulong monotonic = BinaryPrimitives.ReadUInt64LittleEndian(h[8..]);
            var time = EfiTime.Read(h[16..]);
            uint pubKeyIndex = BinaryPrimitives.ReadUInt32LittleEndian(h[32..]);
            uint nameSize = BinaryPrimitives.ReadUInt32LittleEndian(h[36..]);
            uint dataSize = BinaryPrimitives.ReadUInt32LittleEndian(h[40..]);
            var vendor = new Guid(h.Slice(44, 16));
            if (state == VarHeaderValidOnly)
                break;   // a write the firmware did not finish: nothing after it is valid
            if ((ulong)offset + VariableHeaderSize + nameSize + dataSize > (ulong)end || nameSize < 2 || nameSize % 2 != 0)
                Fail($"variable at 0x{offset:x}: name of {nameSize} and data of {dataSize} bytes run past the store or are malformed");
            var nameBytes = span.Slice(offset + VariableHeaderSize, (int)nameSize);
            if (BinaryPrimitives.ReadUInt16LittleEndian(nameBytes[^2..]) != 0)
                Fail($"variable at 0x{offset:x}: name is not NUL-terminated");
            string name = Encoding.Unicode.GetString(nameBytes[..^2]);
            byte[] data = span.Slice(offset + VariableHeaderSize + (int)nameSize, (int)dataSize).ToArray();
            if (state is VarAdded or (VarAdded & VarInDeletedTransition))
                list.Add(new FirmwareVariable(name, vendor, attributes, data) { TimeStamp = time, MonotonicCount = monotonic, PubKeyIndex = pubKeyIndex });
            offset = Align4(offset + VariableHeaderSize + (int)nameSize + (int)dataSize);
        }
        // A variable whose state was mid-deletion may exist twice (the old copy and the new): the later one wins.
        var live = new List<FirmwareVariable>();
        foreach (var v in list)
        {
            int index = live.FindIndex(x => x.Name == v.Name && x.Vendor == v.Vendor);
            if (index >= 0)
                live.RemoveAt(index);
            live.Add(v);
        }
        return new OvmfVariableStore(image, store, (int)size, live);
    }

    /// <summary>The live variable <paramref name="name"/> of <paramref name="vendor"/>, or null.</summary>
    public FirmwareVariable? Find(string name, Guid vendor) => variables.FirstOrDefault(v => v.Name == name && v.Vendor == vendor);

    /// <summary>Sets <paramref name="variable"/>: replaces the one of that name and vendor in place, or adds it at the end.
    /// Refuses a variable the store has no room for.</summary>
    public void Set(FirmwareVariable variable)
    {
        ArgumentNullException.ThrowIfNull(variable);
        if (variable.Name.Length == 0 || variable.Name.Contains('\0'))
            throw new ArgumentException("a variable name is non-empty and has no NUL", nameof(variable));
        var next = new List<FirmwareVariable>(variables);
        int index = next.FindIndex(v => v.Name == variable.Name && v.Vendor == variable.Vendor);
        if (index >= 0)
            next[index] = variable;
        else
            next.Add(variable);
        if (StoreHeaderSize + Layout(next) > storeSize)
            ImageException.Throw(ImageError.InputInvalid, $"variable {variable.Name}: {variable.Data.Length} bytes do not fit the store ({FreeBytes} bytes free)");
        variables.Clear();
        variables.AddRange(next);
    }

    /// <summary>Removes a variable; false when there was none.</summary>
    public bool Remove(string name, Guid vendor) => variables.RemoveAll(v => v.Name == name && v.Vendor == vendor) > 0;

    /// <summary>The VARS.fd image with the variables written: same length, same firmware volume header and FTW blocks.</summary>
    public byte[] ToArray()
    {
        byte[] output = (byte[])image.Clone();
        var area = output.AsSpan(storeStart + StoreHeaderSize, storeSize - StoreHeaderSize);
        area.Fill(0xff);
        int offset = Align4(storeStart + StoreHeaderSize);
        foreach (var v in variables)
        {
            byte[] name = Encoding.Unicode.GetBytes(v.Name + "\0");
            var h = output.AsSpan(offset, VariableHeaderSize);
            h.Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(h, StartId);
            h[2] = VarAdded;
            BinaryPrimitives.WriteUInt32LittleEndian(h[4..], v.Attributes);
            BinaryPrimitives.WriteUInt64LittleEndian(h[8..], v.MonotonicCount);
            v.TimeStamp.Write(h[16..]);
            BinaryPrimitives.WriteUInt32LittleEndian(h[32..], v.PubKeyIndex);
            BinaryPrimitives.WriteUInt32LittleEndian(h[36..], (uint)name.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(h[40..], (uint)v.Data.Length);
            v.Vendor.TryWriteBytes(h.Slice(44, 16));
            name.CopyTo(output.AsSpan(offset + VariableHeaderSize));
            v.Data.CopyTo(output.AsSpan(offset + VariableHeaderSize + name.Length));
            int end = offset + VariableHeaderSize + name.Length + v.Data.Length;
            offset = Align4(end);
        }
        return output;
    }

    static int Layout(IEnumerable<FirmwareVariable> list) =>
        list.Sum(v => Align4(VariableHeaderSize + (v.Name.Length + 1) * 2 + v.Data.Length));

    static int Align4(int value) => (value + 3) & ~3;

    [DoesNotReturn]
    static void Fail(string detail) => ImageException.Throw(ImageError.VariableStoreMalformed, detail);
}
