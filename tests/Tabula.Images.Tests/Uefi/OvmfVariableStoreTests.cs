using System.Text;
using Tabula.Images.Uefi;
using Tabula.Testing;

namespace Tabula.Images.Tests.Uefi;

/// <summary>The OVMF variable store writer against Debian's own stores (the firmware reading what it writes is the
/// UEFI end-to-end test).</summary>
public sealed class OvmfVariableStoreTests
{
    const string Empty = "/usr/share/OVMF/OVMF_VARS_4M.fd";
    const string Microsoft = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";
    static readonly Guid St = new("f401f2c1-b005-4be0-8cee-f2e5945bcbe7");
    static readonly Guid GlobalVariable = new("8be4df61-93ca-11d2-aa0d-00e098032b8c");

    /// <summary>Debian's OVMF_VARS_4M.ms.fd was written by the firmware itself (EnrollDefaultKeys), deleted copies
    /// included: its live variables read, are written compactly, and read back the same; the Secure Boot keys are
    /// time-based authenticated variables with their timestamp.</summary>
    [ToolsFact(Microsoft)]
    public void Debians_secure_boot_store_written_by_the_firmware_reads_and_writes_back_the_same_variables()
    {
        byte[] original = File.ReadAllBytes(Microsoft);
        var store = OvmfVariableStore.Parse(original);
        var pk = Assert.Single(store.Variables, v => v.Name == "PK" && v.Vendor == GlobalVariable);
        Assert.Equal(FirmwareVariable.TimeBasedAuthenticated, pk.Attributes);
        Assert.NotEqual(EfiTime.None, pk.TimeStamp);
        Assert.Single(store.Variables, v => v.Name == "KEK");
        Assert.Single(store.Variables, v => v.Name == "db");
        Assert.Single(store.Variables, v => v.Name == "ConOut");   // three deleted ConOut copies before the live one
        Assert.Equal([1], store.Variables.Single(v => v.Name == "SecureBootEnable").Data);

        byte[] written = store.ToArray();
        var again = OvmfVariableStore.Parse(written);
        Assert.Equal(store.Variables.Select(Describe), again.Variables.Select(Describe));
        Assert.Equal(written, again.ToArray());
        Assert.True(again.FreeBytes > 0);
    }

    static string Describe(FirmwareVariable v) =>
        $"{v.Name} {v.Vendor} {v.Attributes:x} {v.TimeStamp} {v.MonotonicCount} {v.PubKeyIndex} {Convert.ToHexString(v.Data)}";

    [ToolsFact(Empty)]
    public void Host_configuration_goes_into_the_empty_store_and_reads_back_replaced_in_place()
    {
        byte[] empty = File.ReadAllBytes(Empty);
        var store = OvmfVariableStore.Parse(empty);
        Assert.Empty(store.Variables);
        int free = store.FreeBytes;
        byte[] json = Encoding.UTF8.GetBytes("""{"network_mode":"dhcp","ospkg_pointer":"https://10.0.0.1/os.json"}""");
        store.Set(new FirmwareVariable("STHostConfig", St, FirmwareVariable.NonVolatileRuntime, json));
        store.Set(new FirmwareVariable("Other", St, FirmwareVariable.NonVolatileRuntime, [1, 2, 3]));
        byte[] written = store.ToArray();
        Assert.Equal(empty.Length, written.Length);
        Assert.Equal(empty.AsSpan(0, 0x64).ToArray(), written.AsSpan(0, 0x64).ToArray());        // FV and store headers untouched
        Assert.Equal(empty.AsSpan(0x40000).ToArray(), written.AsSpan(0x40000).ToArray());        // FTW blocks untouched
        Assert.Equal([0xaa, 0x55, 0x3f], written.AsSpan(0x64, 3).ToArray());                     // StartId, VAR_ADDED

        var again = OvmfVariableStore.Parse(written);
        Assert.Equal(["STHostConfig", "Other"], again.Variables.Select(v => v.Name));
        Assert.Equal(json, again.Find("STHostConfig", St)!.Data);
        Assert.Equal(FirmwareVariable.NonVolatileRuntime, again.Find("STHostConfig", St)!.Attributes);
        Assert.True(again.FreeBytes < free);

        again.Set(new FirmwareVariable("STHostConfig", St, FirmwareVariable.NonVolatileRuntime, "{}"u8.ToArray()));
        var third = OvmfVariableStore.Parse(again.ToArray());
        Assert.Equal(["STHostConfig", "Other"], third.Variables.Select(v => v.Name));
        Assert.Equal("{}"u8.ToArray(), third.Find("STHostConfig", St)!.Data);
        Assert.True(third.Remove("Other", St));
        Assert.Single(OvmfVariableStore.Parse(third.ToArray()).Variables);
    }

    [ToolsFact(Empty)]
    public void Malformed_stores_and_oversized_variables_are_typed_errors()
    {
        byte[] empty = File.ReadAllBytes(Empty);
        Assert.Equal(ImageError.VariableStoreMalformed, Assert.Throws<ImageException>(() => OvmfVariableStore.Parse(empty.AsSpan(0, 4096))).Reason);
        byte[] flipped = (byte[])empty.Clone();
        flipped[0x20] ^= 1;
        Assert.Contains("length", Assert.Throws<ImageException>(() => OvmfVariableStore.Parse(flipped)).Message);
        flipped = (byte[])empty.Clone();
        flipped[0x2c] ^= 1;   // attributes: the header checksum no longer sums to zero
        Assert.Contains("checksum", Assert.Throws<ImageException>(() => OvmfVariableStore.Parse(flipped)).Message);
        Assert.Contains("not an NV data firmware volume", Assert.Throws<ImageException>(() => OvmfVariableStore.Parse(new byte[empty.Length])).Message);

        var store = OvmfVariableStore.Parse(empty);
        var tooBig = new FirmwareVariable("STHostConfig", St, FirmwareVariable.NonVolatileRuntime, new byte[store.FreeBytes]);
        Assert.Contains("do not fit", Assert.Throws<ImageException>(() => store.Set(tooBig)).Message);

        store.Set(new FirmwareVariable("STHostConfig", St, FirmwareVariable.NonVolatileRuntime, [1]));
        byte[] written = store.ToArray();
        written[0x64 + 36] = 0xff;   // NameSize far past the store
        Assert.Contains("run past the store", Assert.Throws<ImageException>(() => OvmfVariableStore.Parse(written)).Message);
    }
}
