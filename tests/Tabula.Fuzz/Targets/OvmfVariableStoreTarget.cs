using Tabula.Images;
using Tabula.Images.Uefi;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// An OVMF variable store (VARS.fd: firmware volume header, authenticated variable store header, variables) as
/// <c>tabula hostconfig efivar --vars</c> reads it (Tabula.Images OvmfVariableStore). An accepted store, written again,
/// is as long as the input and reads back to the same variables; so does one with a variable set.
/// </summary>
public static class OvmfVariableStoreTarget
{
    static readonly Guid Vendor = new("f401f2c1-b005-4be0-8cee-f2e5945bcbe7");

    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        OvmfVariableStore store;
        try { store = OvmfVariableStore.Parse(input); }
        catch (ImageException e) when (e.Reason == ImageError.VariableStoreMalformed) { return false; }

        FuzzFinding.Check(store.FreeBytes >= 0, "variable store: more variables than room", input);
        byte[] written = store.ToArray();
        FuzzFinding.Check(written.Length == input.Length, "variable store: written length differs", input);
        OvmfVariableStore again;
        try { again = OvmfVariableStore.Parse(written); }
        catch (ImageException e) { FuzzFinding.Fail($"variable store: what the writer wrote does not parse ({e.Message})", input); return false; }
        FuzzFinding.Check(Same(store, again), "variable store: parse, write, parse changed the variables", input);
        FuzzFinding.Check(again.ToArray().AsSpan().SequenceEqual(written), "variable store: writing twice differs", input);

        try { again.Set(new FirmwareVariable("STHostConfig", Vendor, FirmwareVariable.NonVolatileRuntime, "{}"u8.ToArray())); }
        catch (ImageException e) when (e.Reason == ImageError.InputInvalid) { return true; }   // no room: a typed refusal
        var third = OvmfVariableStore.Parse(again.ToArray());
        FuzzFinding.Check(third.Find("STHostConfig", Vendor)?.Data is [(byte)'{', (byte)'}'], "variable store: a set variable did not read back", input);
        return true;
    }

    static bool Same(OvmfVariableStore a, OvmfVariableStore b) =>
        a.Variables.Count == b.Variables.Count && a.Variables.Zip(b.Variables).All(p =>
            p.First.Name == p.Second.Name && p.First.Vendor == p.Second.Vendor && p.First.Attributes == p.Second.Attributes
            && p.First.TimeStamp == p.Second.TimeStamp && p.First.MonotonicCount == p.Second.MonotonicCount
            && p.First.PubKeyIndex == p.Second.PubKeyIndex && p.First.Data.AsSpan().SequenceEqual(p.Second.Data));
}
